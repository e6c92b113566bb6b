"""Shared fixtures: fake installed plugin distributions and a fresh plugin system per test."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Install a fake distribution with a ``gantool`` entry point into a temp folder on sys.path.

    ``plugin_dist("fakeplug", {"fake": "fake_module"}, {"fake_module": "source"})`` creates
    ``fakeplug-1.0.dist-info`` so that ``importlib.metadata`` sees it exactly like a pip-installed package.
    Returns the folder, which subprocess tests can put on PYTHONPATH.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(dist_name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[gantool]\n{lines}\n")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            sys.modules.pop(module, None)
        return site

    yield make
    for path in site.glob("*.py"):
        sys.modules.pop(path.stem, None)


TASK_PLUGIN_SOURCE = """
from dataclasses import dataclass
from gantool import TaskSpec, hookimpl
from gantool import flag


@dataclass(kw_only=True)
class ShineOptions:
    strength: float = flag(0.5, "How much to brighten.")
    mode: str = flag("soft", "soft or hard.")


@dataclass(kw_only=True)
class ShineTrain:
    lr: float = flag(2e-4, "Learning rate.")


@hookimpl
def gantool_register_tasks(register):
    register(TaskSpec(name="{name}", verb="{verb}", summary="Brighten images ({name}).",
                      implementation="gantool.testing:ToyTask", infer_options=ShineOptions,
                      train_options=ShineTrain, default_weights={weights!r}))
"""


def task_plugin_source(name: str = "shine", verb: str = "shine", weights: str | None = None) -> str:
    """Source of a small plugin module registering one task."""
    return TASK_PLUGIN_SOURCE.replace("{name}", name).replace("{verb}", verb).replace("{weights!r}", repr(weights))


@pytest.fixture
def task_source() -> Callable[..., str]:
    """Factory for the source of a small plugin module registering one task."""
    return task_plugin_source


@pytest.fixture(scope="session")
def stop_server() -> Callable[[subprocess.Popen], None]:
    """Stop a ``gantool serve`` subprocess as a user would (Ctrl-C), killing it only if it hangs."""
    def stop(process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return stop
