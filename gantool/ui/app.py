"""The FastAPI app of ``gantool serve``: the JSON API and the page, both from this process, nothing external.

Every error is answered as ``{"error": "one line"}`` with a 4xx status (5xx only for a bug), never a
traceback. Files live in one temporary folder per server, removed when it stops.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from gantool.errors import CheckpointError, GantoolError, InputError, UsageError, one_line
from gantool.plugin.manager import PluginSystem
from gantool.ui.jobs import Job, JobQueue
from gantool.ui.runner import ModelLRU, pick_model, queue_device, run_job
from gantool.ui.schema import coerce_values, describe_tasks
from gantool.ui.uploads import UploadTooLarge, check_image, max_upload_bytes, safe_name, save_upload

STATIC = Path(__file__).parent / "static"

#: Images one job may take (the page sends a few at a time; a folder belongs on the CLI).
MAX_IMAGES = 64


def _status(error: GantoolError) -> int:
    if isinstance(error, UploadTooLarge):
        return 413
    if isinstance(error, CheckpointError):
        return 404
    return 422 if isinstance(error, (InputError, UsageError)) else 400


def create_app(system: PluginSystem, workdir: Path | None = None, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The app for one plugin system; jobs write under ``workdir`` (default: a new temporary folder).

    ``allowed_hosts``: the ``Host`` headers answered (others get 400), so that a web site cannot reach a
    loopback server through DNS rebinding; ``None`` answers any.
    """
    folders: list[Path] = [] if workdir is None else [Path(workdir)]
    models = ModelLRU()
    jobs = JobQueue(lambda job: run_job(system, job, models))

    def root() -> Path:
        """The server's folder, made when the first job needs it (a server never used writes nothing)."""
        if not folders:
            folders.append(Path(tempfile.mkdtemp(prefix="gantool-ui-")))
        return folders[0]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.close()
        if workdir is None and folders:
            shutil.rmtree(folders[0], ignore_errors=True)

    app = FastAPI(title="gantool", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.jobs, app.state.system, app.state.models = jobs, system, models
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(GantoolError)
    async def gantool_error(_: Request, error: GantoolError) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=_status(error))

    @app.exception_handler(Exception)
    async def any_error(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=500)

    @app.middleware("http")
    async def bounded_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length", "")
        limit = max_upload_bytes()
        if request.method == "POST" and length.isdigit() and int(length) > limit:
            return JSONResponse({"error": f"the upload is {int(length):,} bytes, over the limit of {limit:,} "
                                          "(set GANTOOL_UI_MAX_UPLOAD to allow more)"}, status_code=413)
        response: Response = await call_next(request)
        return response

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/tasks")
    def tasks() -> list[dict[str, Any]]:
        return describe_tasks(system)

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return [job.as_dict() for job in jobs.all()]

    @app.post("/api/jobs", status_code=201)
    def submit(task: str = Form(...), model: str = Form(""), options: str = Form("{}"),
               images: list[UploadFile] = File(default=[]), masks: list[UploadFile] = File(default=[])) -> Any:
        return _submit(system, jobs, root(), task, model.strip() or None, options, images, masks).as_dict()

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: str) -> dict[str, Any]:
        job = _job(jobs, job_id)
        return {**job.as_dict(), "position": jobs.position(job)}

    @app.delete("/api/jobs/{job_id}")
    def cancel(job_id: str) -> dict[str, Any]:
        _job(jobs, job_id)
        job = jobs.cancel(job_id)
        assert job is not None
        return job.as_dict()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def result_file(job_id: str, name: str, download: bool = False) -> FileResponse:
        job = _job(jobs, job_id)
        if name not in {row["output"] for row in job.results}:
            raise InputError(f"job {job_id} has no result {name!r}")
        return FileResponse(job.outputs / name, filename=name if download else None)

    @app.get("/api/jobs/{job_id}/archive")
    def result_archive(job_id: str) -> FileResponse:
        """Every result of the job in one zip (stored, not recompressed: the images are compressed already)."""
        job = _job(jobs, job_id)
        names = [row["output"] for row in job.results]
        if not names:
            raise InputError(f"job {job_id} has no results yet")
        archive = job.folder / f"gantool-{job_id}.zip"
        partial = archive.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as bundle:
            for name in names:
                bundle.write(job.outputs / name, arcname=name)
        partial.replace(archive)  # a concurrent request never serves a half-written zip
        return FileResponse(archive, filename=archive.name)

    @app.get("/api/jobs/{job_id}/inputs/{name}")
    def input_file(job_id: str, name: str) -> FileResponse:
        job = _job(jobs, job_id)
        if name not in job.request.get("images", []):
            raise InputError(f"job {job_id} has no input {name!r}")
        return FileResponse(job.inputs / name)

    return app


def _job(jobs: JobQueue, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise CheckpointError(f"no job {job_id!r}")
    return job


def _submit(system: PluginSystem, jobs: JobQueue, root: Path, task: str, model: str | None, options: str,
            images: list[UploadFile], masks: list[UploadFile]) -> Job:
    """Check everything that can be checked before queueing: task, options, model, every upload's header."""
    if task not in system.registry:
        raise UsageError(f"no task {task!r}; installed: {', '.join(s.name for s in system.registry.specs())}")
    spec = system.registry.get(task)
    try:
        raw = json.loads(options or "{}")
    except json.JSONDecodeError as error:
        raise UsageError(f"options are not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(raw, dict):
        raise UsageError("options must be a JSON object of option names and values")
    values = coerce_values(spec, raw)
    model_path = pick_model(system, spec, model, values)
    if spec.kind == "sample":
        if images or masks:
            raise UsageError(f"task {task!r} generates images; it takes no uploads")
    elif not images:
        raise UsageError(f"task {task!r} needs at least one image")
    elif len(images) > MAX_IMAGES:
        raise UsageError(f"{len(images)} images in one job; at most {MAX_IMAGES}")
    elif masks and len(masks) not in (1, len(images)):
        raise UsageError(f"{len(masks)} masks for {len(images)} images: give one mask for all or one per image")
    elif masks and len(spec.inputs) < 2:
        raise UsageError(f"task {task!r} takes no mask")
    device = queue_device(str(values.get("device", "auto")))
    job_id = jobs.new_id()
    job = Job(id=job_id, task=task, device=device, folder=root / f"job-{job_id}")
    names = _store(images, job.inputs, set())
    mask_names = _store(masks, job.inputs / "masks", set())
    job.request = {"model": model, "model_path": str(model_path), "values": values, "images": names,
                   "masks": mask_names}
    job.total = len(names) if names else int(values.get("count", 16))
    return jobs.submit(job)


def _store(uploads: list[UploadFile], folder: Path, taken: set[str]) -> list[str]:
    names = []
    for upload in uploads:
        shown = upload.filename or "upload"
        name = safe_name(shown, taken)
        path = save_upload(upload.file, folder / name, shown)
        try:
            check_image(path, shown)
        except InputError:
            path.unlink(missing_ok=True)
            raise
        names.append(name)
    return names

