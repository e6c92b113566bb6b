"""gantool.engine.batch, batchplan and journal: collecting, planning, journal resume, keep-going, signals. No torch."""

from __future__ import annotations

import io as stdio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gantool.engine.batch import run_batch
from gantool.engine.batchplan import BatchPlan, InputItem, collect_inputs, plan_outputs, resolve_shard, select_shard
from gantool.engine.journal import JOURNAL_NAME
from gantool.errors import InputError, OutputError, UsageError
from gantool.image.io import Image, read_image, write_image

ROOT = Path(__file__).resolve().parents[2]


def make_image(path: Path, seed: int = 0, size: tuple[int, int] = (6, 8)) -> Path:
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, (*size, 3)).astype(np.float32) / 255
    write_image(path, Image(color))
    return path


def invert(image: Image) -> Image:
    return Image(1.0 - image.color, image.alpha, image.bit_depth)


class Counting:
    """``invert`` that counts its calls and can fail on chosen inputs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: Image) -> Image:
        self.calls += 1
        return invert(image)


def run(items: list[InputItem], plan: BatchPlan, process=invert, **kwargs):
    console = Console(file=stdio.StringIO(), width=200)
    result = run_batch(items, process, plan, console=console, progress=False, **kwargs)
    return result, console.file.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        make_image(src / name, seed=i)
    return src


# --------------------------------------------------------------------------------------------- collect


def test_collect_files_folders_globs_sorted_and_deduplicated(tmp_path: Path, folder: Path) -> None:
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"x")
    items = collect_inputs([str(folder / "c.png"), str(folder), str(tmp_path / "in" / "*.png")])
    assert [i.path.name for i in items] == ["a.png", "b.png", "c.png"]
    assert all(i.error is None for i in items)
    assert [str(i.relative_path) for i in items] == ["a.png", "b.png", "c.png"]


def test_collect_reports_missing_file_and_empty_inputs_as_items(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    items = collect_inputs([str(tmp_path / "nope.png"), str(tmp_path / "empty"), str(tmp_path / "*.jpg"),
                            str(folder / "a.png")])
    errors = {i.path.name: i.error for i in items}
    assert errors["nope.png"] == "no such file"
    assert "no supported images" in errors["empty"]
    assert errors["*.jpg"] == "no images match this pattern"
    assert errors["a.png"] is None


def test_collect_recursive_mirrors_relative_paths(tmp_path: Path, folder: Path) -> None:
    make_image(folder / "sub" / "deeper" / "d.png")
    assert [str(i.relative_path) for i in collect_inputs([folder])] == ["a.png", "b.png", "c.png"]
    rel = [str(i.relative_path) for i in collect_inputs([folder], recursive=True)]
    assert rel == ["a.png", "b.png", "c.png", os.path.join("sub", "deeper", "d.png")]
    globbed = collect_inputs([str(tmp_path / "in" / "**" / "*.png")])
    assert os.path.join("sub", "deeper", "d.png") in [str(i.relative_path) for i in globbed]


# ------------------------------------------------------------------------------------------- planning


def test_mirror_tree_suffix_and_ext(tmp_path: Path, folder: Path) -> None:
    make_image(folder / "sub" / "d.png")
    out = tmp_path / "out"
    result, _ = run(collect_inputs([folder], recursive=True), BatchPlan(output=out, suffix="_inv", ext=".JPG"))
    assert len(result.done) == 4
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.jpg"))
    assert written == ["a_inv.jpg", "b_inv.jpg", "c_inv.jpg", os.path.join("sub", "d_inv.jpg")]


def test_without_output_folder_writes_next_to_input_and_refuses_replacing_it(folder: Path) -> None:
    items = collect_inputs([folder])
    with pytest.raises(OutputError, match="would replace their input"):
        plan_outputs(items, BatchPlan())
    with pytest.raises(OutputError):
        plan_outputs(items, BatchPlan(output=folder))
    jobs = plan_outputs(items, BatchPlan(suffix="_x"))
    assert [j.output for j in jobs] == [folder / "a_x.png", folder / "b_x.png", folder / "c_x.png"]
    with pytest.raises(UsageError, match="--ext"):
        plan_outputs(items, BatchPlan(output=folder, ext="heic"))


def test_output_that_is_another_input_fails_only_that_item(tmp_path: Path, folder: Path) -> None:
    make_image(folder / "a.jpg")
    make_image(folder / "a_x.png")
    items = collect_inputs([folder / "a.jpg", folder / "a_x.png", folder / "b.png"])
    before = (folder / "a_x.png").read_bytes()
    result, text = run(items, BatchPlan(suffix="_x", ext="png"))
    assert (folder / "a_x.png").read_bytes() == before
    assert [r.input.name for r in result.failed] == ["a.jpg"]
    assert sorted(r.output.name for r in result.done) == ["a_x_x.png", "b_x.png"]
    assert "would overwrite another input" in result.failed[0].reason
    assert "would overwrite another input" in text
    with pytest.raises(InputError, match="1 of 3 images failed"):
        result.raise_if_failed()


def test_outputs_inside_the_input_tree_are_not_fed_back(tmp_path: Path, folder: Path) -> None:
    plan = BatchPlan(output=folder / "out")
    run(collect_inputs([folder], recursive=True), plan)
    second, _ = run(collect_inputs([folder], recursive=True), plan)
    assert not second.done and not second.failed
    assert sum(r.reason == "inside the output folder" for r in second.skipped) == 3


# -------------------------------------------------------------------------------------------- running


def test_bad_files_are_reported_and_the_rest_goes_on(tmp_path: Path, folder: Path) -> None:
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)

    def process(image: Image) -> Image:
        if image.color[0, 0, 0] < 0:  # never; failures below come from decoding and from a named file
            raise AssertionError
        return invert(image)

    items = collect_inputs([folder, tmp_path / "missing.png"])
    result, text = run(items, BatchPlan(output=tmp_path / "out"), process)
    assert len(result.done) == 3 and len(result.failed) == 2
    reasons = {r.input.name: r.reason for r in result.failed}
    assert "corrupt" in reasons["broken.png"] and reasons["missing.png"] == "no such file"
    assert "broken.png" in text and "missing.png" in text
    with pytest.raises(InputError, match="2 of 5 images failed"):
        result.raise_if_failed()
    for name in ("a", "b", "c"):
        expected = 1.0 - read_image(folder / f"{name}.png").color
        np.testing.assert_allclose(read_image(tmp_path / "out" / f"{name}.png").color, expected, atol=1 / 255)


def test_a_failing_process_fails_that_item_only(tmp_path: Path, folder: Path) -> None:
    def process(image: Image) -> Image:
        if image.color.mean() == read_image(folder / "b.png").color.mean():
            raise RuntimeError("boom\nsecond line")
        return invert(image)

    result, _ = run(collect_inputs([folder]), BatchPlan(output=tmp_path / "out"), process)
    assert [(r.input.name, r.reason) for r in result.failed] == [("b.png", "RuntimeError: boom")]
    assert len(result.done) == 2


def test_journal_resume_and_changed_parameters(tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "out"
    plan = BatchPlan(output=out, params={"model": "m1", "strength": 0.5})
    first = Counting()
    result, _ = run(collect_inputs([folder]), plan, first)
    assert first.calls == 3 and len(result.done) == 3
    lines = [json.loads(line) for line in (out / JOURNAL_NAME).read_text().splitlines()]
    assert {line["status"] for line in lines} == {"done"}
    assert set(lines[0]) >= {"input", "input_size", "input_mtime_ns", "output", "status", "error", "params"}

    again = Counting()
    result, _ = run(collect_inputs([folder]), plan, again)
    assert again.calls == 0 and {r.reason for r in result.skipped} == {"done earlier (journal)"}
    # --overwrite recomputes, even work the journal proves up to date (the overwrite rule)
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out, overwrite=True, params=plan.params), again)
    assert again.calls == 3

    # Other parameters (another verb, another --scale) never replace outputs silently
    changed = Counting()
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out, params={"model": "m1", "strength": 0.7}),
                    changed)
    assert changed.calls == 0 and {r.reason for r in result.skipped} == {
        "exists (made with other parameters; --overwrite to replace)"}

    # A changed input is recomputed by the same command, without --overwrite (it refreshes its own output).
    make_image(folder / "a.png", seed=42, size=(7, 9))
    last = Counting()
    result, _ = run(collect_inputs([folder]), plan, last)
    assert last.calls == 1 and [r.input.name for r in result.done] == ["a.png"]


def test_journal_tolerates_a_torn_last_line(tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "out"
    run(collect_inputs([folder]), BatchPlan(output=out))
    journal = out / JOURNAL_NAME
    journal.write_text(journal.read_text() + '{"input": "half')
    (out / "c.png").unlink()
    counting = Counting()
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out), counting)
    assert counting.calls == 1
    lines = journal.read_text().splitlines()
    assert lines[3] == '{"input": "half'  # kept on its own line; every other line parses
    assert [json.loads(line)["status"] for line in lines[:3] + lines[4:]] == ["done"] * 3 + [
        "skipped", "skipped", "done"]


def test_an_unwritable_journal_warns_and_the_run_goes_on(tmp_path: Path, folder: Path, caplog) -> None:
    (tmp_path / "out" / JOURNAL_NAME).mkdir(parents=True)  # a folder where the journal file should be
    result, _ = run(collect_inputs([folder]), BatchPlan(output=tmp_path / "out"))
    assert len(result.done) == 3
    assert "cannot write the journal" in caplog.text


def test_skip_existing_versus_overwrite(tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "out"
    make_image(out / "a.png", seed=99)  # not made by gantool: no journal entry
    before = (out / "a.png").read_bytes()
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out))
    assert (out / "a.png").read_bytes() == before
    assert [(r.input.name, r.reason) for r in result.skipped] == [
        ("a.png", "output exists (use --overwrite to replace it)")]
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out, overwrite=True))
    assert sorted(r.input.name for r in result.done) == ["a.png", "b.png", "c.png"]  # --overwrite recomputes
    np.testing.assert_allclose(read_image(out / "a.png").color, 1 - read_image(folder / "a.png").color,
                               atol=1 / 255)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_cover_every_item_exactly_once(tmp_path: Path, count: int) -> None:
    items = [InputItem(tmp_path / f"{i:02d}.png", Path(f"{i:02d}.png")) for i in range(11)]
    jobs = plan_outputs(items, BatchPlan(output=tmp_path / "out"))
    shards = [select_shard(jobs, i, count) for i in range(1, count + 1)]
    names = [j.item.path.name for shard in shards for j in shard]
    assert sorted(names) == sorted(i.path.name for i in items) and len(names) == len(set(names))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_parsing_and_torchrun_environment() -> None:
    assert resolve_shard("2/4", env={}) == (2, 4)
    assert resolve_shard(None, env={}) is None
    assert resolve_shard(None, env={"RANK": "1", "WORLD_SIZE": "3"}) == (2, 3)
    assert resolve_shard(None, env={"RANK": "0", "WORLD_SIZE": "1"}) is None
    for bad in ("0/2", "3/2", "1-2", "a/b"):
        with pytest.raises(UsageError):
            resolve_shard(bad, env={})


def test_sharded_runs_share_one_journal(tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "out"
    for index in (1, 2):
        result, _ = run(collect_inputs([folder]), BatchPlan(output=out, shard=f"{index}/2"))
        assert len(result.done) == (2 if index == 1 else 1)
    result, _ = run(collect_inputs([folder]), BatchPlan(output=out))
    assert {r.reason for r in result.skipped} == {"done earlier (journal)"}


def test_threads_decode_compute_and_write_where_designed(tmp_path: Path, folder: Path) -> None:
    seen: dict[str, set[str]] = {"read": set(), "process": set(), "write": set()}

    def read(path: Path) -> Image:
        seen["read"].add(threading.current_thread().name)
        return read_image(path)

    def process(image: Image) -> Image:
        seen["process"].add(threading.current_thread().name)
        return invert(image)

    def write(path: Path, image: Image, **kwargs: object) -> None:
        seen["write"].add(threading.current_thread().name)
        write_image(path, image, **kwargs)

    run(collect_inputs([folder]), BatchPlan(output=tmp_path / "out"), process, workers=2, read=read, write=write)
    assert all(name.startswith("gantool-decode") for name in seen["read"])
    assert seen["process"] == {threading.main_thread().name}
    assert seen["write"] == {"gantool-writer"}
    result, _ = run(collect_inputs([folder]), BatchPlan(output=tmp_path / "out0", overwrite=True), workers=0)
    assert len(result.done) == 3


@pytest.mark.parametrize("queue_bytes", [1, 10**9], ids=["tight", "loose"])
def test_queues_are_bounded_by_bytes_not_count(tmp_path: Path, queue_bytes: int) -> None:
    """Results alive between compute and the end of their write, and decoded inputs waiting for compute,
    stay within the byte budget (one item always passes); a loose budget lets the usual count bound rule."""
    src = tmp_path / "in"
    for i in range(6):
        make_image(src / f"{i}.png", seed=i, size=(16, 16))
    lock = threading.Lock()
    live = {"results": 0, "decoded": 0}
    peak = {"results": 0, "decoded": 0}

    def change(name: str, delta: int) -> None:
        with lock:
            live[name] += delta
            peak[name] = max(peak[name], live[name])

    def read(path: Path) -> Image:
        image = read_image(path)
        change("decoded", 1)
        return image

    def process(image: Image) -> Image:
        change("decoded", -1)
        time.sleep(0.02)
        change("results", 1)
        return Image(np.repeat(np.repeat(1.0 - image.color, 4, 0), 4, 1))  # a x4 result: 16x the input

    def write(path: Path, image: Image, **kwargs: object) -> None:
        time.sleep(0.1)  # a slow encoder: results pile up unless the queue stops them
        write_image(path, image, **kwargs)
        change("results", -1)

    result, _ = run(collect_inputs([src]), BatchPlan(output=tmp_path / "out"), process, workers=2, read=read,
                    write=write, queue_bytes=queue_bytes)
    assert len(result.done) == 6
    if queue_bytes == 1:  # every item is over budget: one in the writer and at most one finished, waiting
        assert peak["results"] <= 2 and peak["decoded"] <= 2
    else:
        assert peak["results"] >= 3  # without the byte bound results do queue up (the test can tell)


def test_byte_budget_lets_one_item_through_and_waits_for_release() -> None:
    from gantool.engine.batchplan import ByteBudget, item_bytes

    budget = ByteBudget(100)
    budget.acquire(500)  # larger than the limit, but nothing is held: it passes
    entered = threading.Event()

    def second() -> None:
        budget.acquire(10)
        entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.3)  # 500 + 10 > 100 while the first is held
    budget.release(500)
    assert entered.wait(2)
    thread.join()
    assert budget.held == 10 and budget.peak == 500
    image = Image(np.zeros((4, 5, 3), np.float32), np.ones((4, 5, 1), np.float32))
    assert item_bytes(image, {"mask": Image(np.zeros((4, 5, 1), np.float32))}) == 4 * 5 * (3 + 1 + 1) * 4


# ---------------------------------------------------------------------------------- interruption


SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: a shell's `&` job ignores it
    from gantool.engine.batch import run_batch
    from gantool.engine.batchplan import BatchPlan, collect_inputs
    from gantool.image.io import Image

    def process(image):
        time.sleep(float(os.environ["DELAY"]))
        return Image(1.0 - image.color, image.alpha, image.bit_depth)

    result = run_batch(collect_inputs([sys.argv[1]]), process, BatchPlan(output=sys.argv[2]),
                       workers=2, progress=False)
    result.raise_if_failed()
    print("DONE", len(result.done), len(result.skipped))
""")


def _start(src: Path, out: Path, delay: float) -> subprocess.Popen[str]:
    env = {**os.environ, "DELAY": str(delay), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(out)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _check_outputs(src: Path, out: Path) -> list[str]:
    """Every file that looks like an output is complete and right; anything else is a hidden temp file."""
    names = []
    for path in out.iterdir():
        if path.name in (JOURNAL_NAME, ".gantool-run.lock"):  # the lock a SIGKILLed run could not remove
            continue
        if path.name.startswith("."):
            assert path.name.endswith(".tmp"), path  # io's temp file, never mistaken for an output
            continue
        expected = 1.0 - read_image(src / path.name).color
        np.testing.assert_allclose(read_image(path).color, expected, atol=1 / 255)
        names.append(path.name)
    return names


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_interrupted_run_leaves_no_partial_output_and_rerun_completes(tmp_path: Path, sig: int) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    for i in range(12):
        make_image(src / f"{i:02d}.png", seed=i, size=(64, 64))
    proc = _start(src, out, delay=0.25)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("*.png"))) < 2:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    if sig != signal.SIGKILL:
        assert "Interrupted" in stderr and "Traceback" in stderr  # KeyboardInterrupt after the summary
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    finished = _check_outputs(src, out)
    assert 2 <= len(finished) < 12

    proc = _start(src, out, delay=0)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    done, skipped = map(int, stdout.split()[1:])
    assert done + skipped == 12 and skipped >= len(finished)
    assert sorted(_check_outputs(src, out)) == [f"{i:02d}.png" for i in range(12)]
