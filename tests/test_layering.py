"""The architecture's rules, checked on the source (AST), so a stray import fails a test instead of a review.

- the engine knows no task: it imports no plugin, no building-block library (``gantool.lib``), no CLI and
  no dataset catalogue;
- only ``gantool/image/io.py`` (file I/O) and ``gantool/image/classical.py`` (OpenCV's inpainting, the baseline
  and prior of the inpaint task, and connected components) import OpenCV (anywhere in the package, the
  plugins, scripts, benchmarks): pixel order and OpenCV's quirks stay behind those two doors;
- the framework (``gantool.plugin``), the CLI and the other modules every start imports stay torch-free at
  module level (``--help`` and the listings must not pay for torch; a subprocess test in test_cli.py checks
  the running commands too);
- the image conventions depend on nothing above them; the library reaches into the engine only for the
  training-step handle it types against.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gantool"
HEAVY = ("torch", "cv2", "kornia", "numpy", "safetensors", "PIL")


def imports(path: Path, *, module_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``path``; optionally only those run at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = _module_level(tree) if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def _module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Statements executed on import: the top level and its if/try blocks, minus ``if TYPE_CHECKING:``."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        else:
            yield node


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(paths: list[Path], forbidden: tuple[str, ...], *, module_level_only: bool = False,
                allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in paths:
        for line, module in imports(path, module_level_only=module_level_only):
            if _under(module, *forbidden) and not _under(module, *allowed):
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{shown}:{line} imports {module}")
    return found


def test_the_engine_imports_no_plugin_library_cli_or_catalogue() -> None:
    plugins = tuple(sorted(p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("gantool_")))
    forbidden = ("gantool.lib", "gantool.cli", "gantool.catalog", "gantool_sharpen", *plugins)
    assert _violations(_sources(PACKAGE / "engine"), forbidden) == []


def test_only_the_image_io_and_classical_modules_import_opencv() -> None:
    allowed = {PACKAGE / "image" / "io.py", PACKAGE / "image" / "classical.py"}
    paths = _sources(PACKAGE, ROOT / "plugins", ROOT / "scripts", ROOT / "benchmarks")
    offenders = _violations([p for p in paths if p not in allowed], ("cv2",))
    assert offenders == []


@pytest.mark.parametrize("layer", ["plugin", "cli"])
def test_framework_and_cli_import_nothing_heavy_at_module_level(layer: str) -> None:
    assert _violations(_sources(PACKAGE / layer), HEAVY, module_level_only=True) == []


def test_modules_every_start_imports_are_light() -> None:
    start = [PACKAGE / name for name in ("__init__.py", "__main__.py", "_compat.py", "errors.py", "weights.py",
                                         "catalog.py", "api.py")]
    assert _violations(start, HEAVY, module_level_only=True) == []


def test_the_framework_does_not_reach_up_into_the_cli_engine_or_library() -> None:
    forbidden = ("gantool.cli", "gantool.engine", "gantool.lib", "gantool.catalog")
    assert _violations(_sources(PACKAGE / "plugin"), forbidden, module_level_only=True) == []


def test_image_conventions_depend_on_nothing_above_them() -> None:
    forbidden = ("gantool.cli", "gantool.engine", "gantool.lib", "gantool.plugin", "gantool.catalog")
    assert _violations(_sources(PACKAGE / "image"), forbidden) == []


def test_the_library_uses_the_engine_only_for_the_training_step_type() -> None:
    violations = _violations(_sources(PACKAGE / "lib"), ("gantool.cli", "gantool.engine", "gantool.catalog"),
                             allowed=("gantool.engine.step",))
    assert violations == []


def test_the_web_app_sits_on_top_and_only_gantool_serve_reaches_it() -> None:
    """``gantool.ui`` (FastAPI) is a client of the engine and the API: nothing below imports it, the CLI only
    inside the ``serve`` command (``--help`` pays nothing for it), and it knows tasks only through the registry."""
    below = _sources(PACKAGE / "engine", PACKAGE / "plugin", PACKAGE / "image", PACKAGE / "lib")
    assert _violations(below, ("gantool.ui", "fastapi", "uvicorn")) == []
    assert _violations(_sources(PACKAGE / "cli"), ("gantool.ui", "fastapi", "uvicorn"), module_level_only=True) == []
    plugins = tuple(sorted(p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("gantool_")))
    assert _violations(_sources(PACKAGE / "ui"), ("gantool.lib", "gantool.cli", *plugins)) == []


def test_the_rule_checker_finds_violations(tmp_path: Path) -> None:
    """The checks above could pass by finding nothing; this one proves they see imports where they are."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                      "try:\n    import cv2\nexcept ImportError:\n    pass\n"
                      "def f():\n    from gantool.lib import losses\n")
    assert [m for _, m in imports(source, module_level_only=True)] == ["typing.TYPE_CHECKING", "cv2"]
    assert "gantool.lib.losses" in [m for _, m in imports(source)]
    found = _violations([source], ("cv2",))
    assert len(found) == 1 and found[0].endswith("m.py:5 imports cv2")


def tree_paths(text: str) -> set[str]:
    """The file paths of the indented tree (two spaces a level) in the code block that starts with ``gantool/``."""
    block = text[text.index("```\ngantool/\n") + 4:]
    block = block[: block.index("```")]
    paths: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name)
        else:
            paths.add("".join(folders) + name)
    return paths


def test_docs_index_lists_every_module() -> None:
    """docs/index.md shows the tree one line per file; a new module must be added there, a gone one removed."""
    listed = {p for p in tree_paths((ROOT / "docs" / "index.md").read_text(encoding="utf-8"))
              if p.startswith("gantool/")}
    modules = {p.relative_to(ROOT).as_posix() for p in _sources(PACKAGE) if p.name != "__init__.py"}
    listed_modules = {p for p in listed if not p.endswith("/__init__.py")} | {
        p for p in listed if p.endswith("/__init__.py") and (ROOT / p).exists()}
    assert sorted(modules - listed_modules) == [] and sorted(p for p in listed if not (ROOT / p).exists()) == []


def test_no_module_grows_past_the_size_limit() -> None:
    """One job per module: past ~400 lines a module is doing several (docs/index.md says where things go)."""
    limit = 420
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources(PACKAGE, ROOT / "plugins")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit]
    assert long == []


def test_plugins_md_documents_the_whole_public_api() -> None:
    """Every name plugin authors may import from ``gantool`` and every public module is in docs/plugins.md."""
    import gantool

    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text[text.index("## The public API"):text.index("## The shape of a plugin")]
    names = [n for n in gantool.__all__ if n != "__version__"]
    modules = [m if not m.startswith("gantool.lib.nets.") else "gantool.lib.nets.*" for m in gantool.PUBLIC_MODULES]
    missing = [f"`{item}`" for item in [*names, *modules] if f"`{item}`" not in section]
    assert missing == []


def test_every_public_module_imports() -> None:
    import importlib

    import gantool

    for name in gantool.PUBLIC_MODULES:
        importlib.import_module(name)


def test_plugin_cards_import_nothing_heavy_and_no_typer() -> None:
    """A plugin's card (``__init__``) and option modules run on every start: no torch, and no Typer code
    (commands are generated from option dataclasses, eval included)."""
    cards = [p for folder in sorted((ROOT / "plugins").glob("gantool_*")) for p in
             (folder / "__init__.py", folder / "options.py") if p.exists()]
    assert len(cards) >= 8
    assert _violations(cards, (*HEAVY, "typer", "rich"), module_level_only=True) == []
