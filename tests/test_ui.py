"""``gantool serve``: the API lists every task and runs jobs whose files equal the CLI's for the same input.

The page itself (a real browser driving it) is tested in a later slice; these tests drive the same API the
page calls, with FastAPI's TestClient, the bundled models and tiny images.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from typer.testing import CliRunner

import gantool_inpaint
import gantool_lapgan
import gantool_superres
from gantool import TaskSpec, flag
from gantool.cli.app import build_app
from gantool.image.io import Image, write_image
from gantool.plugin.manager import build_plugin_system
from gantool.testing import TaskCards, smooth_photo
from gantool.ui.jobs import Job, JobQueue

fastapi = pytest.importorskip("fastapi", reason='the ui extra is not installed (pip install "gantool[ui]")')
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
from fastapi.testclient import TestClient  # noqa: E402

from gantool.ui.app import create_app  # noqa: E402

runner = CliRunner()


@dataclass(kw_only=True)
class GlowOptions:
    strength: float = flag(0.5, "How much to glow.", min=0.0, max=2.0)
    style: Literal["soft", "hard"] = flag("soft", "Glow style.")
    radii: tuple[int, ...] = flag((1, 2), "Blur radii.")


GLOW = TaskSpec(name="glow", verb="glow", summary="Make images glow (a third-party task).",
                implementation="nowhere:Glow", infer_options=GlowOptions)
PLUGINS = [("superres", gantool_superres), ("inpaint", gantool_inpaint), ("lapgan", gantool_lapgan),
           ("glowplugin", TaskCards(GLOW))]


@pytest.fixture(scope="module")
def system():
    return build_plugin_system(entry_points=[], extra_plugins=PLUGINS)


@pytest.fixture
def client(system, tmp_path: Path):
    app = create_app(system, tmp_path / "server")
    with TestClient(app) as test_client:
        test_client.jobs = app.state.jobs  # type: ignore[attr-defined]
        yield test_client


def photo(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    """A smooth small RGB photo (smooth, so that an inpainting of its holes is meaningful)."""
    write_image(path, Image(smooth_photo(*size, seed=seed)))
    return path


def mask(path: Path, size: tuple[int, int] = (24, 32)) -> Path:
    holes = np.zeros((*size, 1), np.float32)
    holes[6:14, 8:20] = 1.0
    write_image(path, Image(holes))
    return path


def submit(client, task: str, files: list[tuple[str, Path]] = (), **options: Any) -> dict[str, Any]:
    model = options.pop("model", "")
    uploads = [(field, (path.name, path.read_bytes(), "image/png")) for field, path in files]
    response = client.post("/api/jobs", data={"task": task, "model": model, "options": json.dumps(options)},
                           files=uploads or None)
    assert response.status_code == 201, response.text
    client.jobs.wait(response.json()["id"], timeout=300)
    job = client.get(f"/api/jobs/{response.json()['id']}").json()
    assert job["state"] == "done", job
    return job


def download(client, job: dict[str, Any], name: str) -> bytes:
    response = client.get(f"/api/jobs/{job['id']}/files/{name}", params={"download": "true"})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    return response.content


def cli(system, *args: str) -> None:
    result = runner.invoke(build_app(system), [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_tasks_list_every_registered_task_with_options_from_its_dataclass(client) -> None:
    tasks = {task["name"]: task for task in client.get("/api/tasks").json()}
    assert set(tasks) == {"superres", "inpaint", "lapgan", "dcgan", "glow"}
    glow = tasks["glow"]
    assert glow["plugin"] == "glowplugin" and glow["kind"] == "image-to-image" and glow["models"] == []
    options = {option["name"]: option for option in glow["options"]}
    assert options["strength"] == {"name": "strength", "flag": "--strength", "type": "float", "default": 0.5,
                                   "help": "How much to glow.", "min": 0.0, "max": 2.0, "choices": None,
                                   "nullable": False, "panel": None}
    assert options["style"]["type"] == "choice" and options["style"]["choices"] == ["soft", "hard"]
    assert options["radii"]["type"] == "list[int]" and options["radii"]["default"] == [1, 2]
    assert [item["name"] for item in tasks["inpaint"]["inputs"]] == ["image", "mask"]
    assert "superres-x2" in {model["name"] for model in tasks["superres"]["models"]}
    assert {"seed", "count", "label", "grid"} <= {option["name"] for option in tasks["lapgan"]["common"]}
    assert "seed" not in {option["name"] for option in tasks["superres"]["common"]}


def test_the_page_and_its_assets_are_served_locally_with_stable_ids(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for element in ("task-select", "options-form", "image-input", "mask-canvas", "run-button", "cancel-button",
                    "progress", "error", "results", "compare-slider", "zoom", "more-like-this"):
        assert f'id="{element}"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        body = client.get(asset)
        assert body.status_code == 200
        assert "http://" not in body.text and "https://" not in body.text  # nothing from another host
    assert "https://" not in page.text and "http://" not in page.text


def test_an_upscale_job_writes_the_clis_bytes(client, system, tmp_path: Path) -> None:
    first, second = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", (16, 20), seed=1)
    job = submit(client, "superres", [("images", first), ("images", second)], model="superres-x2", device="cpu")
    assert [(row["input"], row["output"]) for row in job["results"]] == [("a.png", "a.png"), ("b.png", "b.png")]
    cli(system, "upscale", str(first), str(second), "-o", str(tmp_path / "cli"), "--model", "superres-x2")
    for name in ("a.png", "b.png"):
        assert download(client, job, name) == (tmp_path / "cli" / name).read_bytes()
    assert client.get(f"/api/jobs/{job['id']}/inputs/a.png").content == first.read_bytes()


def test_an_inpaint_job_with_an_uploaded_mask_writes_the_clis_bytes(client, system, tmp_path: Path) -> None:
    image, holes = photo(tmp_path / "p.png"), mask(tmp_path / "m.png")
    job = submit(client, "inpaint", [("images", image), ("masks", holes)], device="cpu", dilate=1)
    cli(system, "inpaint", str(image), "--mask", str(holes), "-o", str(tmp_path / "cli"), "--dilate", "1")
    produced = download(client, job, "p.png")
    assert produced == (tmp_path / "cli" / "p.png").read_bytes()
    assert produced != image.read_bytes()


def test_a_generate_job_writes_the_files_of_gantool_generate_with_that_seed(client, system, tmp_path: Path) -> None:
    job = submit(client, "lapgan", seed=5, count=10, grid=True, device="cpu")  # two chunks: 8, then 10
    names = [row["output"] for row in job["results"]]
    assert names[-1] == "lapgan-seed5-grid.png" and len(names) == 11
    cli(system, "generate", "--seed", "5", "-n", "10", "--grid", "-o", str(tmp_path / "cli"))
    for name in names:
        assert download(client, job, name) == (tmp_path / "cli" / name).read_bytes(), name


def test_a_corrupt_upload_is_a_one_line_4xx_naming_the_file(client, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    response = client.post("/api/jobs", data={"task": "superres"}, files=[("images", ("broken.png", bad.read_bytes(),
                                                                                      "image/png"))])
    assert response.status_code == 422
    message = response.json()["error"]
    assert "broken.png" in message and "\n" not in message and str(tmp_path) not in message
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"strength": 5}, "at most 2.0"), ({"style": "loud"}, "one of soft, hard"), ({"nope": 1}, "no option 'nope'"),
    ({"strength": "x"}, "of type float")])
def test_bad_options_are_refused_before_queueing(client, tmp_path: Path, options, expected) -> None:
    image = photo(tmp_path / "a.png")
    response = client.post("/api/jobs", data={"task": "glow", "options": json.dumps(options)},
                           files=[("images", ("a.png", image.read_bytes(), "image/png"))])
    assert response.status_code == 422 and expected in response.json()["error"]


def test_too_many_pixels_are_refused_from_the_header_before_decoding(client, tmp_path: Path, monkeypatch) -> None:
    import gantool.image.io as io

    def no_decoding(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the upload was decoded")

    monkeypatch.setattr(io, "read_image", no_decoding)
    monkeypatch.setenv("GANTOOL_MAX_PIXELS", "100")
    image = photo(tmp_path / "big.png")
    response = client.post("/api/jobs", data={"task": "superres"},
                           files=[("images", ("big.png", image.read_bytes(), "image/png"))])
    assert response.status_code == 422 and "over the limit of 100" in response.json()["error"]


def test_an_oversized_upload_is_refused_with_413(client, tmp_path: Path, monkeypatch) -> None:
    from gantool.ui.uploads import UploadTooLarge, save_upload

    monkeypatch.setenv("GANTOOL_UI_MAX_UPLOAD", "1000")
    image = photo(tmp_path / "a.png", (64, 64))
    assert image.stat().st_size > 1000
    response = client.post("/api/jobs", data={"task": "superres"},
                           files=[("images", ("a.png", image.read_bytes(), "image/png"))])
    assert response.status_code == 413 and "over the limit of 1,000" in response.json()["error"]
    with pytest.raises(UploadTooLarge, match="a.png"), image.open("rb") as source:  # no Content-Length to trust
        save_upload(source, tmp_path / "copy.png", "a.png")
    assert not (tmp_path / "copy.png").exists()


def test_jobs_run_one_at_a_time_per_device_and_cancel_between_items(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def runner_(job: Job) -> None:
        ran.append(job.id)
        started.set()
        release.wait(10)
        for index in range(3):
            job.step(index, 3)

    jobs = JobQueue(runner_)
    first = jobs.submit(Job(id=jobs.new_id(), task="t", device="cpu", folder=tmp_path / "1"))
    second = jobs.submit(Job(id=jobs.new_id(), task="t", device="cpu", folder=tmp_path / "2"))
    assert started.wait(10)
    assert second.state == "queued" and jobs.position(second) == 1
    jobs.cancel(second.id)
    jobs.cancel(first.id)
    release.set()
    assert jobs.wait(first.id).state == "cancelled" and jobs.wait(second.id).state == "cancelled"
    assert ran == [first.id]
    jobs.close()


def test_a_failing_job_reports_one_line(tmp_path: Path) -> None:
    def broken(job: Job) -> None:
        raise RuntimeError("boom\nsecond line")

    jobs = JobQueue(broken)
    job = jobs.wait(jobs.submit(Job(id="1", task="t", device="cpu", folder=tmp_path)).id)
    assert (job.state, job.error) == ("failed", "RuntimeError: boom")
    jobs.close()


def test_the_sample_chunk_matches_the_engine() -> None:
    from gantool.engine.sampling import SAMPLE_CHUNK
    from gantool.ui.runner import SAMPLE_CHUNK as UI_CHUNK

    assert UI_CHUNK == SAMPLE_CHUNK


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    return calls


def test_serve_binds_to_localhost_by_default(system, served) -> None:
    result = runner.invoke(build_app(system), ["serve"])
    assert result.exit_code == 0, result.output
    assert served == [{"host": "127.0.0.1", "port": 7860, "log_level": "warning"}]


def test_serve_refuses_a_reachable_host_without_allow_remote(system, served) -> None:
    result = runner.invoke(build_app(system), ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output and served == []
    result = runner.invoke(build_app(system), ["serve", "--host", "0.0.0.0", "--allow-remote", "--port", "9000"])
    assert result.exit_code == 0 and served == [{"host": "0.0.0.0", "port": 9000, "log_level": "warning"}]


def test_serve_without_the_extra_says_how_to_install_it(system, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = runner.invoke(build_app(system), ["serve"])
    assert result.exit_code == 2 and 'pip install "gantool[ui]"' in result.output
    assert "gantool[ui]" in runner.invoke(build_app(system), ["serve", "--help"]).output


def test_a_loopback_server_answers_only_local_host_names(system, tmp_path: Path) -> None:
    from gantool.cli.serve import LOCAL_HOST_NAMES

    app = create_app(system, tmp_path, allowed_hosts=LOCAL_HOST_NAMES)
    with TestClient(app, base_url="http://localhost:7860") as local:
        assert local.get("/api/tasks").status_code == 200
        assert local.get("/api/tasks", headers={"host": "rebound.example:7860"}).status_code == 400


def test_gantool_serve_really_listens_on_loopback(tmp_path: Path, stop_server) -> None:
    """A real server process: the page and the task list answer on 127.0.0.1, and Ctrl-C stops it."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "plugins"),
                                                        os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "gantool", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=2) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, server.stderr.read() if server.poll() is not None else "no answer in 60 s"
        assert "superres" in {task["name"] for task in body}
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as response:
            assert b'id="run-button"' in response.read()
    finally:
        stop_server(server)
    assert f"localhost:{port}" in server.stderr.read()


def test_every_tasks_defaults_as_the_page_sends_them_are_accepted(client, system) -> None:
    """The form starts at each option's default; sent back as the page sends them (lists as comma text,
    numbers and bools as JSON, none as null), every task accepts them as its dataclass defaults."""
    from gantool.ui.schema import coerce_values

    for task in client.get("/api/tasks").json():
        spec = system.registry.get(task["name"])
        sent = {option["name"]: ",".join(map(str, option["default"])) if isinstance(option["default"], list)
                else option["default"] for option in [*task["common"], *task["options"]]}
        values = coerce_values(spec, sent)
        own = {option["name"] for option in task["options"]}
        if spec.infer_options is not None:
            rebuilt = spec.infer_options(**{name: value for name, value in values.items() if name in own})
            assert rebuilt == spec.infer_options(), task["name"]


def test_a_model_is_loaded_once_for_the_images_and_jobs_of_a_server(client, system, tmp_path: Path,
                                                                    monkeypatch) -> None:
    import gantool.engine.export as export

    loads: list[str] = []
    real = export.load_model

    def counting(path: Path, *args: Any, **kwargs: Any) -> Any:
        loads.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(export, "load_model", counting)
    first, second = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", seed=1)
    submit(client, "superres", [("images", first), ("images", second)], model="superres-x2", device="cpu")
    submit(client, "superres", [("images", first)], model="superres-x2", device="auto")  # auto is the cpu here
    submit(client, "lapgan", seed=1, count=10, device="cpu")  # two chunks, one load
    default_generator = system.registry.get("lapgan").default_weights  # generate's bundled default
    assert loads == ["superres-x2.safetensors", f"{default_generator}.safetensors"]


def test_the_model_cache_is_keyed_by_the_file_and_bounded(tmp_path: Path) -> None:
    import os

    import torch

    from gantool.engine.inference import load_for_inference
    from gantool.engine.runtime import Runtime
    from gantool.ui.runner import ModelLRU

    model = Path(gantool_superres.__file__).parent / "models" / "superres-x2.safetensors"
    copy = tmp_path / "x2.safetensors"
    copy.write_bytes(model.read_bytes())
    runtime = Runtime(device=torch.device("cpu"))
    cache = ModelLRU(size=1)
    loaded = load_for_inference(copy, gantool_superres.SPEC, runtime, cache)
    assert load_for_inference(copy, gantool_superres.SPEC, runtime, cache) is loaded and len(cache) == 1
    os.utime(copy, ns=(1, 1))  # a replaced file is loaded again, and the old one dropped (size 1)
    again = load_for_inference(copy, gantool_superres.SPEC, runtime, cache)
    assert again is not loaded and len(cache) == 1
    assert load_for_inference(copy, gantool_superres.SPEC, runtime, ModelLRU(size=0)) is not again


def test_device_names_of_one_device_share_a_queue_and_a_missing_one_is_refused(client, tmp_path: Path) -> None:
    import torch

    image = photo(tmp_path / "a.png")
    job = submit(client, "superres", [("images", image)], model="superres-x2", device="auto")
    assert job["device"] == ("cpu" if not torch.cuda.is_available() else f"cuda:{torch.cuda.current_device()}")
    if not torch.cuda.is_available():
        response = client.post("/api/jobs", data={"task": "superres", "options": json.dumps({"device": "cuda"})},
                               files=[("images", ("a.png", image.read_bytes(), "image/png"))])
        assert response.status_code == 422 and "CUDA is not available" in response.json()["error"]


def test_a_large_image_reports_its_tiles_and_a_cancel_stops_it_between_tiles(client, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    seen: list[tuple[int, int, str]] = []
    real = Job.tile

    def observe(job: Job, done: int, total: int) -> None:
        seen.append((done, total, job.message))
        if done == 2:
            client.delete(f"/api/jobs/{job.id}")  # the user presses Cancel in the middle of the image
        real(job, done, total)

    monkeypatch.setattr(Job, "tile", observe)
    image = photo(tmp_path / "big.png", (64, 64))
    response = client.post("/api/jobs", data={"task": "superres", "options": json.dumps(
        {"device": "cpu", "tile": "16", "tile_overlap": 4})}, files=[("images", ("big.png", image.read_bytes(),
                                                                                 "image/png"))])
    job = client.jobs.wait(response.json()["id"], timeout=120)
    assert job.state == "cancelled" and job.error is None and job.results == []
    assert [done for done, _, _ in seen] == [1, 2] and seen[0][1] > 2  # stopped at tile 2 of several
    assert job.message.endswith(f"tile 2 of {seen[0][1]}") and 0 < job.part < 1


def test_tile_progress_is_reported_only_to_the_thread_that_asked() -> None:
    import torch

    from gantool.engine.progress import observe_tiles
    from gantool.engine.tiling import tiled_apply

    seen: list[tuple[int, int]] = []
    image = torch.rand(1, 3, 20, 30)
    with observe_tiles(lambda done, total: seen.append((done, total))):
        out = tiled_apply(lambda x: x * 2, image, tile=12, overlap=2)
        other = threading.Thread(target=tiled_apply, args=(lambda x: x, image), kwargs={"tile": 12, "overlap": 2})
        other.start()
        other.join()
    tiled_apply(lambda x: x, image)  # no observer: nothing reported
    assert torch.allclose(out, image * 2)
    total = seen[0][1]
    assert total > 1 and seen == [(done, total) for done in range(1, total + 1)]


def test_all_results_of_a_job_download_as_one_zip(client, tmp_path: Path) -> None:
    import io
    import zipfile

    first, second = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", seed=1)
    job = submit(client, "superres", [("images", first), ("images", second)], model="superres-x2", device="cpu")
    response = client.get(f"/api/jobs/{job['id']}/archive")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        names = bundle.namelist()
        assert sorted(names) == sorted(row["output"] for row in job["results"]) and len(names) == 2
        for name in names:
            assert bundle.read(name) == download(client, job, name)
    unknown = client.get("/api/jobs/nosuchjob/archive")
    assert unknown.status_code == 404 and "nosuchjob" in unknown.json()["error"]
