"""Bundled models are package data found through each plugin's own weights hook (gantool.weights.package_models).

The wheel-level proof (a non-editable install run from another folder) is ``.ci/wheel-install.sh``; these
tests check the resolution order and that a third-party package can ship default weights the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import gantool.weights
import gantool_colorize
import gantool_cyclegan
import gantool_superres
from gantool import TaskSpec, hookimpl
from gantool.plugin.manager import build_plugin_system
from gantool.weights import bundled_model_folders, list_models, package_models

BUILTINS = [("superres", gantool_superres), ("colorize", gantool_colorize), ("cyclegan", gantool_cyclegan)]


def write_model_header(path: Path, task: str, summary: str = "") -> Path:
    """A header-only safetensors file: enough for resolution and listing (no tensors)."""
    meta = {"gantool.task": task, "gantool.summary": summary}
    header = ('{"__metadata__": {' + ", ".join(f'"{k}": "{v}"' for k, v in meta.items()) + "}}").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.fixture()
def no_user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_each_builtin_plugin_ships_its_models_in_its_package() -> None:
    for name, module in BUILTINS:
        assert module.MODELS.path == Path(module.__file__).parent / "models", name
    assert gantool_superres.MODELS.find("superres-x4") is not None
    assert gantool_superres.MODELS.find("colorize") is None  # each plugin answers for its own files only
    assert gantool_colorize.MODELS.find("colorize") is not None
    assert gantool_cyclegan.MODELS.find("cyclegan-horse2zebra") is not None
    assert gantool_cyclegan.MODELS.find("cut-horse2zebra") is not None
    assert {folder.package for folder in bundled_model_folders()} >= {"gantool_superres", "gantool_colorize",
                                                                      "gantool_cyclegan"}


def test_models_list_shows_the_bundled_models_with_summaries(no_user_models: Path) -> None:
    listed = {entry.name: entry for entry in list_models()}
    for name in ("superres-x4", "superres-x2", "superres-x4-gan", "colorize", "cyclegan-horse2zebra",
                 "cut-horse2zebra"):
        assert listed[name].error is None and listed[name].summary, name
    assert listed["superres-x4"].task == "superres" and listed["colorize"].task == "colorize"


def test_resolution_order_user_folder_then_bundled_then_cache(no_user_models: Path) -> None:
    system = build_plugin_system(entry_points=[], extra_plugins=BUILTINS)
    hook = system.manager.hook.gantool_resolve_weights
    spec = system.registry.get("superres")
    assert hook(task=spec, name="superres-x4") == gantool_superres.MODELS.path / "superres-x4.safetensors"
    cached = write_model_header(no_user_models / "cache" / "gantool" / "models" / "superres-x4.safetensors", "superres")
    assert hook(task=spec, name="superres-x4") != cached  # the cache comes after the bundled models
    only_cached = write_model_header(cached.with_name("mine.safetensors"), "superres")
    assert hook(task=spec, name="mine") == only_cached
    override = write_model_header(no_user_models / "user" / "superres-x4.safetensors", "superres")
    assert hook(task=spec, name="superres-x4") == override  # $GANTOOL_MODELS replaces a bundled name
    assert list_models()[[e.name for e in list_models()].index("superres-x4")].path == override


def test_a_third_party_package_ships_default_weights_the_same_way(tmp_path: Path, no_user_models: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "gantool_glowpkg"
    write_model_header(package / "models" / "glow-v1.safetensors", "glow", summary="a glowing model")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "gantool_glowpkg", raising=False)
    monkeypatch.setattr(gantool.weights, "_BUNDLED", dict(gantool.weights._BUNDLED))  # forget it afterwards
    models = package_models("gantool_glowpkg")

    class Glow:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(TaskSpec(name="glow", verb="glow", summary="Glow.", implementation="m:C",
                              default_weights="glow-v1"))

        @hookimpl(trylast=True)
        def gantool_resolve_weights(self, task, name):
            return models.find(name)

    system = build_plugin_system(entry_points=[], extra_plugins=[("glow", Glow())])
    spec = system.registry.get("glow")
    assert system.manager.hook.gantool_resolve_weights(task=spec, name="glow-v1") == package / "models" / \
        "glow-v1.safetensors"
    assert any(e.name == "glow-v1" and e.summary == "a glowing model" for e in list_models())
