"""Keep the hook contract honest: hookspecs.py, docs/plugins.md and the tests must agree.

A hook added to ``gantool.hookspecs`` without a documented section (with its real argument names) or
without a ``test_hook_<name>`` test fails here, and so does a stale ``HOOK_NAMES``. The per-hook tests
below drive each hook the way a plugin would.
"""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool import TaskSpec, __version__, hookimpl
from gantool.cli import launch
from gantool.cli.app import build_app
from gantool.plugin import hookspecs
from gantool.plugin.manager import build_plugin_system

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
SPEC_MARK = f"{hookspecs.PROJECT_NAME}_spec"  # the attribute pluggy's HookspecMarker sets
HEADING = re.compile(r"^### `(gantool_\w+)\(([^)]*)\)`\s*$", re.MULTILINE)


def hook_functions() -> dict[str, object]:
    """Every hookspec-marked function in ``gantool.hookspecs``, by name."""
    return {name: value for name, value in vars(hookspecs).items()
            if callable(value) and hasattr(value, SPEC_MARK)}


def documented_hooks() -> dict[str, list[tuple[str, ...]]]:
    """``### `name(a, b)``` headings of docs/plugins.md: hook name -> argument tuples (one per heading)."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for name, args in HEADING.findall(DOC.read_text(encoding="utf-8")):
        found.setdefault(name, []).append(tuple(a.strip() for a in args.split(",") if a.strip()))
    return found


def doc_section(name: str) -> str:
    """The text of one hook's section, from its heading to the next heading (code blocks skipped)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### `{name}("))
    section, in_code = [lines[start]], False
    for line in lines[start + 1 :]:
        in_code = in_code != line.startswith("```")
        if not in_code and re.match(r"#{1,3} ", line):
            break
        section.append(line)
    return "\n".join(section)


def test_hookspecs_match_hook_names():
    found = hook_functions()
    assert found, "no hookspec-marked functions found in gantool.hookspecs"
    assert len(hookspecs.HOOK_NAMES) == len(set(hookspecs.HOOK_NAMES))
    assert set(hookspecs.HOOK_NAMES) == set(found)
    assert all(name.startswith("gantool_") for name in found)


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_hookspec_is_well_formed(name):
    function = hook_functions()[name]
    parameters = inspect.signature(function).parameters.values()
    # pluggy never passes an argument that has a default, so a default in a spec is a silent bug
    assert all(p.default is inspect.Parameter.empty for p in parameters), name
    assert "Added in " in (function.__doc__ or ""), f"{name}'s docstring must say which version added it"


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_every_hook_has_a_doc_section_with_its_real_signature(name):
    documented = documented_hooks()
    assert name in documented, f"docs/plugins.md lacks a heading: ### `{name}(...)`"
    assert len(documented[name]) == 1, f"docs/plugins.md has {len(documented[name])} headings for {name}"
    real = tuple(inspect.signature(hook_functions()[name]).parameters)
    assert documented[name][0] == real, f"docs/plugins.md documents {name}{documented[name][0]}, the spec has {real}"


def test_docs_document_no_hook_that_does_not_exist():
    assert set(documented_hooks()) <= set(hook_functions())


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_doc_section_states_firstresult_and_version(name):
    section = doc_section(name)
    firstresult = getattr(hook_functions()[name], SPEC_MARK)["firstresult"]
    assert f"**firstresult:** {'yes' if firstresult else 'no'}" in section
    added = re.search(r"Added in (\d+\.\d+)", hook_functions()[name].__doc__ or "")
    assert added and f"**Added in:** {added.group(1)}" in section


def _test_function_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names.update(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
    return names


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_every_hook_has_a_test(name):
    wanted = "test_hook_" + name.removeprefix("gantool_")
    assert wanted in _test_function_names(), f"no test function named {wanted} under tests/"


def test_example_plugin_pins_the_current_minor_release():
    """Policy 4: plugins pin gantool>=0.X,<0.Y; the example must track gantool's own version."""
    project = tomllib.loads((ROOT / "docs/plugins/example/pyproject.toml").read_text(encoding="utf-8"))["project"]
    major, minor = (int(part) for part in __version__.split(".")[:2])
    assert f"gantool>={major}.{minor},<{major}.{minor + 1}" in project["dependencies"]
    assert project["entry-points"]["gantool"] == {"sharpen": "gantool_sharpen"}


# ------------------------------------------------------------------------------------------ the hooks


def test_hook_register_tasks():
    class Plugin:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(TaskSpec(name="glow", verb="glow", summary="Make images glow.", implementation="glow.task:Glow"))
            register(TaskSpec(name="glow-train", verb=None, summary="Train only.", implementation="glow.task:G"))

    system = build_plugin_system(entry_points=[], extra_plugins=[("glow-plugin", Plugin())])
    assert system.info("glow-plugin").status == "loaded"
    assert system.info("glow-plugin").tasks == ["glow", "glow-train"]
    assert system.registry.owner("glow") == "glow-plugin"
    assert system.registry.get("glow").summary == "Make images glow."
    assert [spec.name for spec in system.registry.by_verb()["glow"]] == ["glow"]
    assert "glow" in CliRunner().invoke(build_app(system), ["--help"]).output


def test_hook_register_commands():
    class Plugin:
        @hookimpl
        def gantool_register_commands(self, app):
            @app.command(rich_help_panel="Plugins")
            def hello(name: str = "world") -> None:
                """Say hello."""
                print(f"hello {name}")

    system = build_plugin_system(entry_points=[], extra_plugins=[("hello-plugin", Plugin())])
    app = build_app(system)
    assert app.problems == []
    runner = CliRunner()
    result = runner.invoke(app, ["hello", "--name", "gan"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello gan"
    assert "hello" in runner.invoke(app, ["--help"]).output


def test_hook_register_commands_failure_is_a_warning_not_a_crash():
    class Plugin:
        @hookimpl
        def gantool_register_commands(self, app):
            raise RuntimeError("no commands today")

    app = build_app(build_plugin_system(entry_points=[], extra_plugins=[("sad", Plugin())]))
    assert any("no commands today" in problem for problem in app.problems)
    assert CliRunner().invoke(app, ["--version"]).exit_code == 0


def _model_file(path: Path, task: str) -> Path:
    """A minimal valid safetensors file (header only) naming its task."""
    header = f'{{"__metadata__": {{"gantool.task": "{task}"}}}}'.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


def test_hook_resolve_weights(tmp_path, monkeypatch):
    models = tmp_path / "models"
    monkeypatch.setenv("GANTOOL_MODELS", str(models))
    _model_file(models / "shared.safetensors", "glow")  # the built-in resolver would find this one
    _model_file(models / "plain.safetensors", "glow")
    store = _model_file(tmp_path / "store" / "shared-v2.safetensors", "glow")
    asked: list[tuple[str, str]] = []

    class Store:
        @hookimpl
        def gantool_resolve_weights(self, task, name):
            asked.append((task.name, name))
            return store if name == "shared" else None

    class Cards:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(TaskSpec(name="glow", verb="glow", summary="Glow.", implementation="glow.task:Glow"))

    system = build_plugin_system(entry_points=[], extra_plugins=[("cards", Cards()), ("store", Store())])
    hook = system.manager.hook.gantool_resolve_weights
    spec = system.registry.get("glow")
    assert hook.spec.opts["firstresult"]
    assert hook(task=spec, name="shared") == store  # the plugin wins over gantool's resolver
    assert hook(task=spec, name="plain") == models / "plain.safetensors"  # None falls through to GANTOOL_MODELS
    assert hook(task=spec, name="nowhere") is None
    assert asked == [("glow", "shared"), ("glow", "plain"), ("glow", "nowhere")]

    # and the CLI uses the hook to find --model NAME
    calls: dict[str, dict] = {}
    monkeypatch.setattr(launch, "run_inference", lambda **kwargs: calls.setdefault("run_inference", kwargs))
    result = CliRunner().invoke(build_app(system), ["glow", "a.png", "--model", "shared"])
    assert result.exit_code == 0, result.output
    assert calls["run_inference"]["model_path"] == store
