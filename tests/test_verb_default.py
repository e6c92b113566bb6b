"""Which bundled model a verb shared by several tasks runs without ``--model``: ``TaskSpec.verb_default``
and the task flags typed on the command line (``translate`` vs ``translate --direction BtoA``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool import TaskSpec, flag
from gantool.cli import launch
from gantool.cli.app import build_app
from gantool.cli.verbs import default_task
from gantool.errors import UsageError
from gantool.plugin.manager import build_plugin_system
from gantool.testing import TaskCards

runner = CliRunner()


@dataclass(kw_only=True)
class WayOptions:
    """Flags of the two-way task only (like cyclegan's ``--direction``)."""

    direction: str = flag("AtoB", "AtoB or BtoA.")


@dataclass(kw_only=True)
class ShadeOptions:
    """Flags of the one-way task only."""

    strength: float = flag(0.5, "How strong.")


@dataclass(kw_only=True)
class SeedOptions:
    seed: int = flag(0, "A flag two tasks share.")


@dataclass(kw_only=True)
class SeededWayOptions(WayOptions, SeedOptions):
    pass


@dataclass(kw_only=True)
class SeededShadeOptions(ShadeOptions, SeedOptions):
    pass


def card(name: str, options: type | None, weights: str | None = None, *, marked: bool = False) -> TaskSpec:
    return TaskSpec(name=name, verb="turn", summary=f"Turn images ({name}).", implementation="gantool.testing:ToyTask",
                    infer_options=options, default_weights=weights, verb_default=marked)


ONE_WAY = card("oneway", SeededShadeOptions, "oneway-v1", marked=True)
TWO_WAY = card("twoway", SeededWayOptions, "twoway-v1")
PAIRED = card("paired", None)  # no default weights: never chosen without --model


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder holding a header-only file for every default above."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("GANTOOL_MODELS", str(folder))
    for task in ("oneway", "twoway"):
        header = json.dumps({"__metadata__": {"gantool.task": task}}).encode()
        (folder / f"{task}-v1.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    return folder


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """What the CLI hands to the engine, instead of running it."""
    recorded: dict[str, dict] = {}
    monkeypatch.setattr(launch, "run_inference", lambda **kwargs: recorded.__setitem__("run_inference", kwargs))
    return recorded


def app_with(*specs: TaskSpec):  # noqa: ANN201 - a Typer app
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("cards", TaskCards(*specs))]))


def turn(app, *args: str):  # noqa: ANN001, ANN201
    return runner.invoke(app, ["turn", "x.png", *args])


def test_a_bare_verb_runs_the_marked_default(models: Path, calls: dict) -> None:
    app = app_with(PAIRED, TWO_WAY, ONE_WAY)
    assert app.problems == []
    result = turn(app)
    assert result.exit_code == 0, result.output
    assert calls["run_inference"]["spec"].name == "oneway"
    assert calls["run_inference"]["model_path"] == models / "oneway-v1.safetensors"


def test_a_typed_flag_picks_the_default_whose_task_takes_it(models: Path, calls: dict) -> None:
    app = app_with(PAIRED, TWO_WAY, ONE_WAY)
    result = turn(app, "--direction", "BtoA")
    assert result.exit_code == 0, result.output
    assert calls["run_inference"]["spec"].name == "twoway"
    assert calls["run_inference"]["model_path"] == models / "twoway-v1.safetensors"
    assert calls["run_inference"]["task_options"].direction == "BtoA"
    assert turn(app, "--strength", "0.9").exit_code == 0 and calls["run_inference"]["spec"].name == "oneway"
    # A flag both defaults take leaves both: the marked one runs, with the value.
    assert turn(app, "--seed", "3").exit_code == 0 and calls["run_inference"]["spec"].name == "oneway"
    assert calls["run_inference"]["task_options"].seed == 3


def test_defaults_that_cannot_be_told_apart_need_a_model(models: Path, calls: dict) -> None:
    unmarked = card("oneway", SeededShadeOptions, "oneway-v1")
    app = app_with(PAIRED, TWO_WAY, unmarked)
    bare = turn(app)
    assert bare.exit_code == 2 and len(bare.output.strip().splitlines()) == 1
    assert "'turn' needs --model: it runs oneway, paired or twoway models" in bare.output
    assert turn(app, "--seed", "1").exit_code == 2  # both take --seed, neither is marked
    assert turn(app, "--direction", "BtoA").exit_code == 0 and calls["run_inference"]["spec"].name == "twoway"
    assert turn(app, "--model", str(models / "oneway-v1.safetensors")).exit_code == 0


def test_flags_no_default_takes_need_a_model(models: Path, calls: dict) -> None:
    app = app_with(PAIRED, TWO_WAY, ONE_WAY)
    both = turn(app, "--direction", "BtoA", "--strength", "0.1")
    assert both.exit_code == 2 and "run_inference" not in calls
    assert "'turn' needs --model: no default model takes --direction, --strength;" in both.output
    assert len(both.output.strip().splitlines()) == 1


def test_default_task_without_the_cli() -> None:
    assert default_task("turn", [PAIRED, TWO_WAY, ONE_WAY]) is ONE_WAY
    assert default_task("turn", [PAIRED, TWO_WAY, ONE_WAY], {"direction", "model", "tile"}) is TWO_WAY
    assert default_task("turn", [TWO_WAY]) is TWO_WAY  # the one default of a verb needs no mark
    with pytest.raises(UsageError, match="needs --model"):
        default_task("turn", [PAIRED])


def test_two_marked_tasks_of_one_verb_leave_it_out_naming_both() -> None:
    app = app_with(ONE_WAY, card("twoway", SeededWayOptions, "twoway-v1", marked=True))
    [problem] = app.problems
    assert problem.startswith("verb 'turn' left out: tasks 'oneway' (plugin 'cards'), 'twoway' (plugin 'cards')")
    assert "at most one task of a verb may" in problem
    assert runner.invoke(app, ["turn", "--help"]).exit_code == 2  # no such command


def test_the_mark_is_validated_on_the_card() -> None:
    with pytest.raises(ValueError, match="verb_default needs a verb and default_weights"):
        card("lonely", None, marked=True)
    with pytest.raises(ValueError, match="verb_default must be True or False"):
        card("odd", None, "odd-v1", marked="yes")  # type: ignore[arg-type]
    assert not TaskSpec(name="plain", verb="turn", summary="s", implementation="m:C").verb_default
