"""Where model files live, and reading their self-describing metadata without importing torch.

A gantool model is one ``.safetensors`` file whose header metadata is its card (task, architecture and
arguments, scale, colour space, training command ...). This module is also gantool's essential internal
plugin, with two ``gantool_resolve_weights`` implementations: paths and ``$GANTOOL_MODELS`` after any
plugin's ordinary resolver, and a wrapper that asks the user cache when nobody found the name. In between
come the models plugins ship in their packages (:func:`package_models`, each plugin's own ``trylast`` hook).
"""

from __future__ import annotations

import importlib.resources
import json
import os
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import CheckpointError
from gantool.plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from gantool.plugin.spec import TaskSpec

MODEL_SUFFIX = ".safetensors"
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


def model_search_path() -> list[Path]:
    """Folders searched for ``--model NAME``, in the hook's order: $GANTOOL_MODELS, the models folders that
    plugins ship (:func:`package_models`), the user cache."""
    return [*_user_folders(), *(folder.path for folder in bundled_model_folders()), _cache_folder()]


def _user_folders() -> list[Path]:
    return [Path(entry).expanduser() for entry in os.environ.get("GANTOOL_MODELS", "").split(os.pathsep) if entry]


def user_model_folder() -> Path:
    """Where models users add go by default (``gantool models import``): the first ``$GANTOOL_MODELS``
    folder, else the user cache; both are on the search path."""
    folders = _user_folders()
    return folders[0] if folders else _cache_folder()


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gantool" / "models"


def _find_in(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / f"{name}{MODEL_SUFFIX}", *folder.glob(f"*/{name}{MODEL_SUFFIX}")):
            if candidate.is_file():
                return candidate
    return None


def find_model_file(name: str) -> Path | None:
    """The first ``NAME.safetensors`` on the search path (also looked for one folder down), or None."""
    return _find_in(model_search_path(), name)


@dataclass(frozen=True)
class ModelFolder:
    """The models a package ships as package data: ``PACKAGE/models/NAME.safetensors`` (and its card)."""

    package: str
    path: Path

    def find(self, name: str) -> Path | None:
        """``NAME.safetensors`` in this folder, or None: the body of a plugin's weights resolver."""
        candidate = self.path / f"{name}{MODEL_SUFFIX}"
        return candidate if candidate.is_file() else None


_BUNDLED: dict[str, ModelFolder] = {}


def package_models(package: str, folder: str = "models") -> ModelFolder:
    """The models folder inside an installed package, recorded so ``gantool models list`` shows its files.

    Call it at module level in a plugin's card module (``MODELS = package_models(__name__)``) and answer
    ``gantool_resolve_weights`` with ``MODELS.find(name)`` under ``@hookimpl(trylast=True)``, so users'
    ``$GANTOOL_MODELS`` and other resolvers can still override a bundled name. Torch-free.
    """
    root = Path(str(importlib.resources.files(package)))
    entry = ModelFolder(package=package, path=root / folder)
    _BUNDLED[package] = entry
    return entry


def bundled_models_resolver(models: ModelFolder) -> Callable[[TaskSpec, str], Path | None]:
    """A ready ``gantool_resolve_weights`` implementation answering from a :func:`package_models` folder.

    In a plugin's card module: ``MODELS = package_models(__name__)`` then
    ``gantool_resolve_weights = bundled_models_resolver(MODELS)``. It is marked ``trylast``, so a user's
    ``$GANTOOL_MODELS`` or another plugin's resolver can still override a bundled name.
    """

    @hookimpl(trylast=True)
    def gantool_resolve_weights(task: TaskSpec, name: str) -> Path | None:
        del task  # a bundled model is found by name; the verb checks its gantool.task
        return models.find(name)

    return gantool_resolve_weights


def bundled_model_folders() -> list[ModelFolder]:
    """The folders recorded by :func:`package_models`, in the order the plugins were imported."""
    return list(_BUNDLED.values())


@hookimpl
def gantool_resolve_weights(task: TaskSpec, name: str) -> Path | None:
    """A name that is a path to a file is taken as is; otherwise look in ``$GANTOOL_MODELS``.

    An ordinary implementation registered first, so it runs after every plugin's ordinary resolver but
    before the ``trylast`` ones that answer with the models plugins ship.
    """
    del task  # the built-in resolver finds models by name alone
    as_path = Path(name).expanduser()
    if as_path.suffix == MODEL_SUFFIX and as_path.is_file():
        return as_path
    return _find_in(_user_folders(), name)


@hookimpl(wrapper=True, specname="gantool_resolve_weights")
def resolve_from_user_cache(task: TaskSpec, name: str) -> Generator[None, Path | None, Path | None]:
    """The last resort, once every implementation said None: ``~/.cache/gantool/models`` (``$XDG_CACHE_HOME``),
    for models users add. A wrapper, because pluggy calls ``trylast`` implementations in registration order
    and this module registers first; the plugins' bundled models must be asked before the cache."""
    del task
    found = yield
    return found if found is not None else _find_in([_cache_folder()], name)


def resolve_model_path(name: str) -> Path:
    """A model name from the search path (``gantool models list``) or a ``.safetensors`` path, for tools
    such as ``gantool eval`` that take ``--model`` without going through a task verb.

    Raises:
        CheckpointError: neither a file nor a known model name.
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    found = find_model_file(name)
    if found is None:
        raise CheckpointError(missing_model_message(name) + " or pass --model PATH")
    return found


def missing_model_message(name: str) -> str:
    """Why ``--model NAME`` found nothing, in one line: a folder, a file of another kind, or no such model."""
    path = Path(name).expanduser()
    if path.is_dir():
        return f"model '{path}' is a folder; pass the {MODEL_SUFFIX} file in it"
    if path.exists() and path.suffix != MODEL_SUFFIX:
        return (f"model '{path}' is not a {MODEL_SUFFIX} file: gantool reads only {MODEL_SUFFIX} models (a .pth or "
                ".pt file can run code when it is loaded), so convert it first")
    hint = " (no such file)" if "/" in name or name.endswith(MODEL_SUFFIX) else ""
    return f"model {name!r} not found{hint}; see `gantool models list`"


def read_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no torch, no tensors).

    Raises:
        CheckpointError: the file is missing, truncated, or not a safetensors file.
    """
    metadata = read_header(path).get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"cannot read model '{path}': metadata is not a string map")
    return {str(key): str(value) for key, value in metadata.items()}


def read_header(path: Path) -> dict[str, Any]:
    """The whole JSON header of a safetensors file: ``__metadata__`` and, per tensor, dtype, shape and offsets.

    Raises:
        CheckpointError: the file is missing, truncated, or its header is not a JSON object.
    """
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise CheckpointError(f"cannot read model '{path}': file is empty or truncated")
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > _MAX_HEADER_BYTES:
                raise CheckpointError(f"cannot read model '{path}': not a safetensors file")
            header_bytes = handle.read(header_size)
    except OSError as error:
        raise CheckpointError(f"cannot read model '{path}': {error.strerror or error}") from error
    if len(header_bytes) != header_size:
        raise CheckpointError(f"cannot read model '{path}': header is truncated")
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"cannot read model '{path}': not a safetensors file (bad header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot read model '{path}': not a safetensors file (header is not a JSON object)")
    return header


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, from the header alone (nothing is read or allocated).

    Raises:
        CheckpointError: as :func:`read_header`, or an entry without a list of non-negative integers as shape.
    """
    shapes = {}
    for name, entry in read_header(path).items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise CheckpointError(f"cannot read model '{path}': tensor {name[:80]!r} has no valid shape")
        shapes[name] = tuple(shape)
    return shapes


@dataclass(frozen=True)
class ModelEntry:
    """One model file found on the search path, for ``gantool models list``."""

    name: str
    path: Path
    task: str
    size_bytes: int
    summary: str
    error: str | None = None


def list_models() -> list[ModelEntry]:
    """Every model file on the search path; the first file of a name shadows later ones."""
    seen: dict[str, ModelEntry] = {}
    for folder in model_search_path():
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob(f"*{MODEL_SUFFIX}"), *folder.glob(f"*/*{MODEL_SUFFIX}")]):
            name = path.name[: -len(MODEL_SUFFIX)]
            if name in seen:
                continue
            seen[name] = _describe(name, path)
    return [seen[name] for name in sorted(seen)]


def _describe(name: str, path: Path) -> ModelEntry:
    try:
        size = path.stat().st_size
        metadata = read_metadata(path)
    except OSError as error:  # a dangling symlink, a file removed meanwhile: an error row, not a crash
        return ModelEntry(name=name, path=path, task="?", size_bytes=0, summary="",
                          error=f"cannot read model '{path}': {(error.strerror or str(error)).lower()}")
    except CheckpointError as error:
        return ModelEntry(name=name, path=path, task="?", size_bytes=size, summary="", error=str(error))
    summary = metadata.get("gantool.summary") or metadata.get("gantool.architecture", "")
    return ModelEntry(name=name, path=path, task=metadata.get("gantool.task", "?"), size_bytes=size, summary=summary)
