"""Old import paths of the 0.1 layout keep working for one minor release, with a ``DeprecationWarning``.

0.2 moved the flat top level into layers (``plugin/``, ``cli/``, ``image/``, ``engine/``, ``lib/``). A
plugin written against 0.1 (``from gantool.settings import flag``, ``from gantool.nets.unet import UNet``)
still imports: a meta path finder answers the old names with a module whose attributes are looked up in
the new modules, so classes and functions are the very same objects. Remove in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

REMOVED_IN = "0.3"

#: Old module -> the new modules that hold its names, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "gantool.hookspecs": ("gantool.plugin.hookspecs",),
    "gantool.plugins": ("gantool.plugin.manager",),
    "gantool.registry": ("gantool.plugin.registry",),
    "gantool.spec": ("gantool.plugin.spec",),
    "gantool.task": ("gantool.plugin.task",),
    "gantool.options": ("gantool.plugin.options", "gantool.cli.params"),
    "gantool.settings": ("gantool.plugin.common", "gantool.plugin.options", "gantool.lib.options"),
    "gantool.launch": ("gantool.cli.launch",),
    "gantool.evalcmd": ("gantool.cli.eval",),
    "gantool.datasets": ("gantool.catalog", "gantool.cli.data"),
    "gantool.io": ("gantool.image.io",),
    "gantool.imagetensor": ("gantool.image.tensor",),
    "gantool.color": ("gantool.lib.color",),
    "gantool.losses": ("gantool.lib.losses",),
    "gantool.pool": ("gantool.lib.pool",),
    "gantool.scores": ("gantool.lib.metrics", "gantool.cli.table"),
    "gantool.data": ("gantool.lib.data",),
    "gantool.cgan": ("gantool.lib.conditional",),
    "gantool.nets": ("gantool.lib.nets",),
    "gantool.nets.layers": ("gantool.lib.nets.layers",),
    "gantool.nets.patchgan": ("gantool.lib.nets.patchgan",),
    "gantool.nets.resnet": ("gantool.lib.nets.resnet",),
    "gantool.nets.unet": ("gantool.lib.nets.unet",),
}


class _ForwardingModule(types.ModuleType):
    """Stands in for a moved module: every attribute comes from the new modules, imported on first use."""

    def __init__(self, name: str, targets: Sequence[str]) -> None:
        super().__init__(name, f"Deprecated alias of {', '.join(targets)}.")
        self._targets = tuple(targets)

    def _modules(self) -> list[types.ModuleType]:
        return [importlib.import_module(target) for target in self._targets]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for module in self._modules():
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self._targets)}) has no "
                             f"attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({name for module in self._modules() for name in dir(module)})


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        is_package = any(other.startswith(fullname + ".") for other in MOVED)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated and will be removed in gantool {REMOVED_IN}; import from "
                      f"{' or '.join(targets)} instead", DeprecationWarning, stacklevel=_caller_level())
        return _ForwardingModule(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        if any(other.startswith(module.__name__ + ".") for other in MOVED):
            module.__path__ = []  # a package, so that its moved submodules import through this finder


def _caller_level() -> int:
    """Warning stack level of the importing line: the first frame outside this module.

    ``warnings.warn`` itself skips importlib's frozen frames when it counts, so they are not counted here.
    """
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                 or frame.f_code.co_filename == __file__):
        if not frame.f_code.co_filename.startswith("<frozen"):
            level += 1
        frame = frame.f_back
    return level


_FINDER = _MovedModuleFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): the old names no longer exist as files."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
