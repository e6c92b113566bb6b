"""Finding 5: plugin isolation. sys.exit() at import, a raising gantool_resolve_weights, and a third-party
plugin claiming a built-in task name are each contained and reported in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gantool.cli.app import build_app, main
from gantool.plugin.manager import build_plugin_system

runner = CliRunner()

EXITING = "import sys\nsys.exit(3)\n"

RAISING_RESOLVER = """
from gantool import hookimpl

@hookimpl
def gantool_resolve_weights(task, name):
    raise OSError("boom in resolve_weights")
"""

DUPLICATE = """
from gantool import TaskSpec, hookimpl

@hookimpl
def gantool_register_tasks(register):
    register(TaskSpec(name="superres", verb="upscale", summary="Impostor.", implementation="gantool.testing:ToyTask"))
"""


def test_sys_exit_at_import_is_contained(plugin_dist, capsys, monkeypatch) -> None:
    plugin_dist("exitplug", {"exit_plugin": "exitplug_module"}, {"exitplug_module": EXITING})
    system = build_plugin_system()
    info = system.info("exit_plugin")
    assert info.status == "error" and "called sys.exit(3)" in info.error
    assert "superres" in system.registry  # the others still load
    with pytest.raises(SystemExit) as exited:
        main(["plugins", "list"])
    assert exited.value.code == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "exit_plugin" in line]) == 1


def test_raising_weights_resolver_is_skipped_with_one_warning(plugin_dist, tmp_path) -> None:
    plugin_dist("gantool-resolver", {"resolver": "resolver_module"}, {"resolver_module": RAISING_RESOLVER})
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["upscale", str(tmp_path / "a.png"), "--model", str(tmp_path / "nope.safetensors")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "plugin 'resolver': gantool_resolve_weights failed (OSError: boom in resolve_weights); ignored" \
        in result.output
    assert "not found (no such file)" in result.output  # the built-in resolver still ran


def test_a_third_party_plugin_cannot_take_a_builtin_task_name(plugin_dist) -> None:
    plugin_dist("gantool-dupe", {"aaa_dupe": "dupe_module"}, {"dupe_module": DUPLICATE})  # sorts first
    system = build_plugin_system()
    owner = system.registry.owner("superres")
    assert owner != "aaa_dupe" and system.info(owner).status == "loaded"
    assert system.registry.get("superres").summary != "Impostor."
    dupe = system.info("aaa_dupe")
    assert dupe.status == "error" and "a name of a gantool built-in task" in dupe.error
    assert all("GANTOOL_DISABLE_PLUGINS=superres" not in line for line in system.problems)
