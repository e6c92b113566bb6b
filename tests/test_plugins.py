"""Plugin loading: entry points, broken plugins, misspelled hooks, duplicates and the blocked list."""

from __future__ import annotations

import pytest

from gantool import TaskSpec, hookimpl
from gantool.errors import PluginError, UsageError
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.registry import TaskRegistry


def test_entry_point_plugin_is_loaded_with_its_distribution(plugin_dist, task_source):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()}, version="2.3")
    system = build_plugin_system()
    info = system.info("shine")
    assert info.status == "loaded", info.error
    assert (info.distribution, info.version, info.tasks) == ("gantool-shine", "2.3", ["shine"])
    spec = system.registry.get("shine")
    assert spec.verb == "shine" and system.registry.owner("shine") == "shine"


def test_broken_plugin_is_reported_and_others_still_load(plugin_dist, task_source):
    plugin_dist("gantool-broken", {"broken": "broken_plugin"}, {"broken_plugin": "import not_a_module_xyz\n"})
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    system = build_plugin_system()
    broken = system.info("broken")
    assert broken.status == "error"
    assert "not_a_module_xyz" in broken.error and "broken_plugin" in broken.error
    assert "\n" not in broken.error
    assert system.problems == [f"plugin 'broken': {broken.error}"]
    assert "shine" in system.registry


def test_misspelled_hook_is_reported_with_a_suggestion(plugin_dist):
    source = "from gantool import hookimpl\n\n@hookimpl\ndef gantool_register_task(register):\n    pass\n"
    plugin_dist("gantool-typo", {"typo": "typo_plugin"}, {"typo_plugin": source})
    system = build_plugin_system()
    info = system.info("typo")
    assert info.status == "error"
    assert "unknown hook 'gantool_register_task'" in info.error
    assert "did you mean 'gantool_register_tasks'" in info.error
    assert not system.manager.has_plugin("typo")


def test_hook_with_wrong_arguments_is_reported(plugin_dist):
    source = "from gantool import hookimpl\n\n@hookimpl\ndef gantool_register_tasks(registr):\n    pass\n"
    plugin_dist("gantool-args", {"args": "args_plugin"}, {"args_plugin": source})
    info = build_plugin_system().info("args")
    assert info.status == "error" and "registr" in info.error


def test_plugin_raising_while_registering_is_reported(plugin_dist):
    source = "from gantool import hookimpl\n\n@hookimpl\ndef gantool_register_tasks(register):\n    1 / 0\n"
    plugin_dist("gantool-div", {"div": "div_plugin"}, {"div_plugin": source})
    info = build_plugin_system().info("div")
    assert info.status == "error" and "ZeroDivisionError" in info.error


def test_duplicate_task_names_name_both_plugins(plugin_dist, task_source):
    plugin_dist("gantool-a", {"a": "plugin_a"}, {"plugin_a": task_source(name="shine", verb="shine")})
    plugin_dist("gantool-b", {"b": "plugin_b"}, {"plugin_b": task_source(name="shine", verb="glow")})
    system = build_plugin_system()
    assert system.info("b").status == "error"
    assert "'a'" in system.info("b").error and "'b'" in system.info("b").error
    with pytest.raises(PluginError, match="registered by two plugins, 'a' and 'b'"):
        system.registry.get("shine")


def test_registry_rejects_duplicates_directly():
    registry = TaskRegistry()
    spec = TaskSpec(name="x", verb="x", summary="x", implementation="m:C")
    registry.add(spec, "first")
    with pytest.raises(PluginError, match="'first' and 'second'"):
        registry.add(spec, "second")


def test_blocked_plugins_are_not_imported(plugin_dist, task_source):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    plugin_dist("gantool-boom", {"boom": "boom_plugin"}, {"boom_plugin": "raise SystemExit('imported!')\n"})
    system = build_plugin_system(blocked=["boom"])
    assert system.info("boom").status == "blocked"
    assert "shine" in system.registry


def test_allow_list_loads_only_named_plugins(plugin_dist, task_source):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    plugin_dist("gantool-glow", {"glow": "glow_plugin"}, {"glow_plugin": task_source(name="glow", verb="glow")})
    system = build_plugin_system(allowed=["glow"])
    assert system.info("shine").status == "blocked"
    assert system.registry.names() == ["glow"] or "glow" in system.registry.names()
    assert "shine" not in system.registry


def test_unknown_task_gets_a_suggestion():
    registry = TaskRegistry()
    registry.add(TaskSpec(name="superres", verb="upscale", summary="s", implementation="m:C"), "p")
    with pytest.raises(UsageError, match="did you mean 'superres'"):
        registry.get("superes")


def test_in_process_plugin_object_registers_tasks():
    class Plugin:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(TaskSpec(name="demo", verb=None, summary="Train only.", implementation="m:C"))

    system = build_plugin_system(entry_points=[], extra_plugins=[("demo-plugin", Plugin())])
    assert system.registry.tasks_of("demo-plugin") == ["demo"]
    assert system.registry.by_verb() == {}


def test_register_rejects_non_spec_objects():
    class Plugin:
        @hookimpl
        def gantool_register_tasks(self, register):
            register({"name": "nope"})

    system = build_plugin_system(entry_points=[], extra_plugins=[("bad", Plugin())])
    assert system.info("bad").status == "error" and "not a gantool.TaskSpec" in system.info("bad").error


def test_invalid_spec_reports_every_problem():
    with pytest.raises(ValueError) as raised:
        TaskSpec(name="Bad Name", verb="ok", summary="", implementation="nocolon", scale=0)
    message = str(raised.value)
    for part in ("name 'Bad Name'", "summary", "implementation", "scale"):
        assert part in message


def test_builtin_weights_resolver_is_essential_and_last(tmp_path, monkeypatch):
    model = tmp_path / "mine.safetensors"
    model.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path))
    system = build_plugin_system(entry_points=[], blocked=["gantool.weights"])
    spec = TaskSpec(name="x", verb="x", summary="x", implementation="m:C")
    assert system.manager.hook.gantool_resolve_weights(task=spec, name="mine") == model


def test_hook_resolve_weights_plugin_wins_over_builtin(tmp_path):
    target = tmp_path / "company.safetensors"

    class Store:
        @hookimpl
        def gantool_resolve_weights(self, task, name):
            return target if name == "company" else None

    system = build_plugin_system(entry_points=[], extra_plugins=[("store", Store())])
    spec = TaskSpec(name="x", verb="x", summary="x", implementation="m:C")
    assert system.manager.hook.gantool_resolve_weights(task=spec, name="company") == target
    assert system.manager.hook.gantool_resolve_weights(task=spec, name="missing-model") is None
