"""The CLI built from plugins: verbs, train commands, options from dataclasses, errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool.cli import launch
from gantool.cli.app import build_app, main
from gantool.plugin.manager import build_plugin_system

runner = CliRunner()


def write_model_header(path: Path, metadata: dict[str, str]) -> Path:
    """A minimal valid safetensors file (no tensors) carrying ``metadata``: enough for task dispatch."""
    header = json.dumps({"__metadata__": metadata}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.fixture
def shine_app(plugin_dist, task_source):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    return build_app(build_plugin_system())


@pytest.fixture
def calls(monkeypatch):
    """Record what the CLI hands to the engine instead of running it."""
    recorded: dict[str, dict] = {}
    for name in ("run_inference", "run_training", "run_sampling"):
        monkeypatch.setattr(launch, name, lambda _name=name, **kwargs: recorded.__setitem__(_name, kwargs))
    return recorded


def test_help_lists_one_verb_per_task(shine_app):
    result = runner.invoke(shine_app, ["--help"])
    assert result.exit_code == 0
    assert "shine" in result.output and "Brighten images (shine)." in result.output
    assert "train" in result.output and "plugins" in result.output and "models" in result.output


def test_task_options_come_from_dataclasses(shine_app):
    verb_help = runner.invoke(shine_app, ["shine", "--help"]).output
    assert "--strength" in verb_help and "How much to brighten." in verb_help
    assert "--tile" in verb_help and "--overwrite" in verb_help and "--skip-existing" in verb_help
    train_help = runner.invoke(shine_app, ["train", "shine", "--help"]).output
    assert "--lr" in train_help and "Learning rate." in train_help and "--steps" in train_help
    assert "--strength" not in train_help


def test_verb_passes_typed_options_to_the_engine(shine_app, calls, tmp_path):
    model = write_model_header(tmp_path / "m.safetensors", {"gantool.task": "shine"})
    result = runner.invoke(shine_app, ["shine", "a.png", "b/", "--strength", "0.7", "--model", str(model),
                                       "-o", str(tmp_path / "out"), "--tile", "256"])
    assert result.exit_code == 0, result.output
    call = calls["run_inference"]
    assert call["inputs"] == ["a.png", "b/"] and call["model_path"] == model
    assert call["spec"].name == "shine"
    assert call["task_options"].strength == 0.7 and call["task_options"].mode == "soft"
    assert call["options"].tile == "256" and call["options"].output == tmp_path / "out"


def test_config_file_is_overridden_by_typed_flags(shine_app, calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "somewhere").mkdir()  # --data is resolved (folder or known name) before the engine starts
    config = tmp_path / "run.toml"
    config.write_text('steps = 5\nlr = 0.001\nbatch-size = 3\ndata = "somewhere"\n')
    result = runner.invoke(shine_app, ["train", "shine", "--config", str(config), "--steps", "7"])
    assert result.exit_code == 0, result.output
    call = calls["run_training"]
    assert call["options"].steps == 7 and call["options"].batch_size == 3
    assert call["options"].data == Path("somewhere") and call["task_options"].lr == 0.001
    assert call["command"].startswith("gantool")


def test_unknown_config_key_is_a_usage_error_with_suggestion(shine_app, calls, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("stepz = 5\nlr = 'fast'\n")
    result = runner.invoke(shine_app, ["train", "shine", "--config", str(config), "--data", "x"])
    assert result.exit_code == 2
    assert "did you mean 'steps'" in result.output and "lr: expected float" in result.output
    assert "Traceback" not in result.output and "run_training" not in calls


def test_train_without_data_is_a_usage_error(shine_app, calls):
    result = runner.invoke(shine_app, ["train", "shine"])
    assert result.exit_code == 2 and "needs --data" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_model_is_a_runtime_error_in_one_line(shine_app, calls):
    result = runner.invoke(shine_app, ["shine", "a.png", "--model", "no-such-model"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: model 'no-such-model' not found; see `gantool models list`"]


def test_no_default_weights_installed_says_what_to_do(plugin_dist, task_source, calls, monkeypatch, tmp_path):
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path))
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source(weights="shine-v1")})
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["shine", "a.png"])
    assert result.exit_code == 1 and "bundled model 'shine-v1'" in result.output
    write_model_header(tmp_path / "shine-v1.safetensors", {"gantool.task": "shine"})
    assert runner.invoke(app, ["shine", "a.png"]).exit_code == 0
    assert calls["run_inference"]["model_path"] == tmp_path / "shine-v1.safetensors"


def test_default_weights_can_depend_on_an_option(plugin_dist, task_source, calls, monkeypatch, tmp_path):
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path))
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source(weights="shine-{mode}")})
    for mode in ("soft", "hard"):
        write_model_header(tmp_path / f"shine-{mode}.safetensors", {"gantool.task": "shine"})
    app = build_app(build_plugin_system())
    assert runner.invoke(app, ["shine", "a.png"]).exit_code == 0
    assert calls["run_inference"]["model_path"] == tmp_path / "shine-soft.safetensors"
    assert runner.invoke(app, ["shine", "a.png", "--mode", "hard"]).exit_code == 0
    assert calls["run_inference"]["model_path"] == tmp_path / "shine-hard.safetensors"


def test_shared_verb_dispatches_on_model_metadata(plugin_dist, task_source, calls, tmp_path):
    # "convert", not the built-in "translate" verb: its bundled CycleGAN default would answer a bare call.
    plugin_dist("gantool-a", {"a": "plugin_a"}, {"plugin_a": task_source(name="paired", verb="convert")})
    plugin_dist("gantool-b", {"b": "plugin_b"}, {"plugin_b": task_source(name="unpaired", verb="convert")})
    app = build_app(build_plugin_system())
    assert runner.invoke(app, ["convert", "x.png"]).exit_code == 2  # no default weights: --model is needed
    model = write_model_header(tmp_path / "u.safetensors", {"gantool.task": "unpaired"})
    assert runner.invoke(app, ["convert", "x.png", "--model", str(model)]).exit_code == 0
    assert calls["run_inference"]["spec"].name == "unpaired"
    other = write_model_header(tmp_path / "o.safetensors", {"gantool.task": "elsewhere"})
    result = runner.invoke(app, ["convert", "x.png", "--model", str(other)])
    assert result.exit_code == 1 and "no installed plugin provides" in result.output


def test_plugins_list_json_shows_errors_and_versions(plugin_dist, task_source):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()}, version="0.4")
    plugin_dist("gantool-broken", {"broken": "broken_plugin"}, {"broken_plugin": "raise RuntimeError('x')\n"})
    result = runner.invoke(build_app(build_plugin_system()), ["plugins", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["shine"]["version"] == "0.4" and rows["shine"]["tasks"] == ["shine"]
    assert rows["broken"]["status"] == "error" and "RuntimeError: x" in rows["broken"]["error"]


def test_models_list_reads_metadata(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path))
    write_model_header(tmp_path / "tiny.safetensors", {"gantool.task": "shine", "gantool.summary": "demo"})
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    result = runner.invoke(build_app(build_plugin_system(entry_points=[])), ["models", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["tiny"]["task"] == "shine" and rows["tiny"]["summary"] == "demo"
    assert "truncated" in rows["junk"]["error"]


def test_main_reports_broken_plugin_and_keeps_working(plugin_dist, task_source, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "broken")
    plugin_dist("gantool-broken", {"broken": "broken_plugin"}, {"broken_plugin": "import nope_nope\n"})
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("gantool ")
    warnings = [line for line in captured.err.splitlines() if "broken" in line]
    assert len(warnings) == 1 and "nope_nope" in warnings[0]


def test_main_mistyped_verb_gets_suggestion_and_exit_2(plugin_dist, task_source, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "shine")
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    with pytest.raises(SystemExit) as exited:
        main(["shien", "a.png"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean 'shine'" in err[0]


def test_main_disable_plugins_environment(plugin_dist, task_source, capsys, monkeypatch):
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    monkeypatch.setenv("GANTOOL_DISABLE_PLUGINS", "shine")
    with pytest.raises(SystemExit) as exited:
        main(["shine", "a.png"])
    assert exited.value.code == 2
    assert "Disabled plugins: shine" in capsys.readouterr().err


BAD_COMMAND_PLUGIN = """
from __future__ import annotations
from gantool import hookimpl


@hookimpl
def gantool_register_commands(app):
    import typer

    @app.command()
    def broken_tool(level: typer.Whatever = 1) -> None:
        pass
"""


def test_plugin_command_that_breaks_the_app_is_left_out(plugin_dist, task_source, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "badcmd,shine")
    plugin_dist("gantool-badcmd", {"badcmd": "badcmd_plugin"}, {"badcmd_plugin": BAD_COMMAND_PLUGIN})
    plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    assert "shine" in captured.out and "broken-tool" not in captured.out
    assert "plugin 'badcmd': gantool_register_commands failed (NameError" in captured.err
    assert "1 command(s) left out" in captured.err


SHARED_GROUP_PLUGIN = """
from __future__ import annotations
import typer
from gantool import hookimpl


def shared(app):
    for group in app.registered_groups:
        if group.name == "tools":
            return group.typer_instance
    sub = typer.Typer()
    app.add_typer(sub, name="tools")
    return sub


@hookimpl
def gantool_register_commands(app):
    @shared(app).command("{name}")
    def command(level: {annotation} = 1) -> None:
        print("{name} ran")
"""


def test_broken_plugin_command_in_a_shared_group_keeps_the_others(plugin_dist, capsys, monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "good,bad")
    good = SHARED_GROUP_PLUGIN.replace("{name}", "good").replace("{annotation}", "int")
    bad = SHARED_GROUP_PLUGIN.replace("{name}", "bad").replace("{annotation}", "typer.Nope")
    plugin_dist("gantool-good", {"good": "good_plugin"}, {"good_plugin": good})
    plugin_dist("gantool-bad", {"bad": "bad_plugin"}, {"bad_plugin": bad})
    with pytest.raises(SystemExit) as exited:
        main(["tools", "good"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    assert "good ran" in captured.out and "plugin 'bad'" in captured.err


PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('HEAVY:' + ','.join(sorted(m for m in ('torch', 'cv2', 'kornia')"
    " if m in sys.modules)) + '\\n'))\n"
    "from gantool.cli import main\n"
    "main(sys.argv[1:])\n"
)


@pytest.mark.parametrize("args", [["--help"], ["plugins", "list"], ["models", "list"], ["train", "--help"],
                                  ["eval", "--help"], ["eval", "superres", "--help"]])
def test_listing_commands_do_not_import_torch(args, plugin_dist, task_source):
    site = plugin_dist("gantool-shine", {"shine": "shine_plugin"}, {"shine_plugin": task_source()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY:\n" in result.stderr, result.stderr
    if args == ["--help"]:
        assert "shine" in result.stdout


def test_a_flag_of_another_task_on_a_shared_verb_is_refused(calls, tmp_path):
    """`translate --direction BtoA` on a pix2pix model would be silently ignored; it is a usage error instead."""
    app = build_app(build_plugin_system())
    pix2pix = write_model_header(tmp_path / "p.safetensors", {"gantool.task": "pix2pix"})
    result = runner.invoke(app, ["translate", "x.png", "--model", str(pix2pix), "--direction", "BtoA"])
    assert result.exit_code == 2 and "run_inference" not in calls
    assert "--direction (an option of cyclegan) does not apply to a pix2pix model" in result.output
    assert runner.invoke(app, ["translate", "x.png", "--model", str(pix2pix), "--seed", "3"]).exit_code == 0
    cyclegan = write_model_header(tmp_path / "c.safetensors", {"gantool.task": "cyclegan"})
    assert runner.invoke(app, ["translate", "x.png", "--model", str(cyclegan), "--direction", "BtoA"]).exit_code == 0
    assert calls["run_inference"]["task_options"].direction == "BtoA"


def test_a_bool_option_that_defaults_to_true_can_be_turned_off(calls, tmp_path):
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["train", "cyclegan", "--data", str(tmp_path), "--no-flip"])
    assert result.exit_code == 0, result.output
    assert calls["run_training"]["task_options"].flip is False
    assert runner.invoke(app, ["train", "cyclegan", "--data", str(tmp_path)]).exit_code == 0
    assert calls["run_training"]["task_options"].flip is True
