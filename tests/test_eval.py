"""``gantool eval TASK``: generated from ``TaskSpec.eval_options``, run by ``Task.evaluate``, printed by the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gantool import EvalColumn, EvalContext, EvalResult, TaskSpec, flag, hookimpl
from gantool.cli import launch
from gantool.cli.app import build_app
from gantool.engine.evaluation import run_evaluation
from gantool.engine.export import export_model
from gantool.errors import PluginError
from gantool.image.io import Image, write_image
from gantool.plugin.common import EvalOptions
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.task import Task
from gantool.testing import TOY_SPEC, TaskCards, ToyEvalOptions, ToyTask, ToyTrainOptions, random_image

runner = CliRunner()


def toy_app(*plugins: tuple[str, object], specs: tuple[TaskSpec, ...] = (TOY_SPEC,)):
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("cards", TaskCards(*specs)), *plugins]))


def write_folder(folder: Path, count: int = 3) -> Path:
    for index in range(count):
        write_image(folder / f"img{index}.png", Image(random_image(12, 10, seed=index)))
    return folder


def toy_model(path: Path) -> Path:
    task = ToyTask(TOY_SPEC, ToyTrainOptions(channels=4))
    return export_model(path, task, task.build_inference_networks())


def write_model_header(path: Path, metadata: dict[str, str]) -> Path:
    """A minimal valid safetensors file (no tensors) carrying ``metadata``: enough for task dispatch."""
    header = json.dumps({"__metadata__": metadata}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


# ------------------------------------------------------------------------------------------- the command


def test_toy_task_gets_an_eval_command_with_its_flags_and_the_common_ones():
    app = toy_app()
    assert app.problems == []
    group_help = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).output
    assert "toy" in group_help and "Mean absolute error against the square root" in group_help
    command_help = runner.invoke(app, ["eval", "toy", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--limit", "Score only the first N images", "--data", "--model", "-m", "--device", "--json",
                   "--config"):
        assert option in command_help, option
    assert "--precision" not in command_help and "--tile" not in command_help


def test_no_eval_group_when_no_task_declares_eval_options():
    app = toy_app(specs=(dataclasses.replace(TOY_SPEC, eval_options=None, eval_without_model=False),))
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code != 0 and "No such command" in result.output


def test_eval_hands_typed_options_and_config_to_the_engine(tmp_path, monkeypatch):
    recorded = {}

    def fake_run_evaluation(**kwargs):
        recorded.update(kwargs)
        return EvalResult(rows=[{"image": "x", "input_l1": 0.5, "model_l1": None}], columns=[
            EvalColumn(name="input_l1", header="input L1")])

    monkeypatch.setattr(launch, "run_evaluation", fake_run_evaluation)
    data = write_folder(tmp_path / "images", 1)
    config = tmp_path / "eval.toml"
    config.write_text('limit = 3\ndevice = "cpu"\n')
    result = runner.invoke(toy_app(), ["eval", "toy", "--data", str(data), "--config", str(config), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert recorded["spec"].name == "toy" and recorded["model_path"] is None  # baseline only: no --model
    assert recorded["task_options"] == ToyEvalOptions(limit=2)  # typed flag wins over the config
    assert recorded["options"] == EvalOptions(data=data, device="cpu")  # the config's device
    assert "input L1" in result.output and "0.50" in result.output


def test_eval_needs_data_and_reports_a_missing_folder(tmp_path):
    missing = runner.invoke(toy_app(), ["eval", "toy"])
    assert missing.exit_code == 2 and "needs --data" in missing.output
    nowhere = runner.invoke(toy_app(), ["eval", "toy", "--data", str(tmp_path / "nowhere")])
    assert nowhere.exit_code == 1 and "nowhere" in nowhere.output


def test_json_has_the_declared_columns_and_the_table_their_headers(tmp_path):
    data = write_folder(tmp_path / "images")
    model = toy_model(tmp_path / "toy.safetensors")
    app = toy_app()
    result = runner.invoke(app, ["eval", "toy", "--data", str(data), "--model", str(model), "--device", "cpu",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [["image", "input_l1", "model_l1"]] * 4
    assert [row["image"] for row in rows] == ["img0", "img1", "img2", "mean"]
    assert rows[-1]["model_l1"] == pytest.approx(sum(row["model_l1"] for row in rows[:3]) / 3)
    assert all(0 < row["model_l1"] < 1 and row["model_l1"] != row["input_l1"] for row in rows)

    table = runner.invoke(app, ["eval", "toy", "--data", str(data), "--model", str(model), "--device", "cpu"],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "input L1" in table.output and "model L1" in table.output
    assert f"{rows[-1]['model_l1']:.4f}" in table.output and "toy on" in table.output

    baseline = runner.invoke(app, ["eval", "toy", "--data", str(data), "--device", "cpu", "--limit", "1"],
                             env={"COLUMNS": "200"})
    assert baseline.exit_code == 0 and "input L1" in baseline.output and "model L1" not in baseline.output


def test_eval_resolves_model_names_through_the_weights_hook(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path / "no-models-here"))
    model = toy_model(tmp_path / "store" / "toy-v7.safetensors")
    asked: list[tuple[str, str]] = []

    class Store:
        @hookimpl
        def gantool_resolve_weights(self, task, name):
            asked.append((task.name, name))
            return model if name == "company-toy" else None

    app = toy_app(("store", Store()))
    data = write_folder(tmp_path / "images", 2)
    result = runner.invoke(app, ["eval", "toy", "--data", str(data), "-m", "company-toy", "--device", "cpu",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert asked == [("toy", "company-toy")]
    assert json.loads(result.stdout)[0]["model_l1"] is not None
    unknown = runner.invoke(app, ["eval", "toy", "--data", str(data), "--model", "other-name"])
    assert unknown.exit_code == 1 and "model 'other-name' not found" in unknown.output


def test_model_of_another_task_is_a_one_line_usage_error(tmp_path):
    glow = TaskSpec(name="glow", verb="glow", summary="Glow.", implementation="gantool.testing:ToyTask",
                    eval_options=ToyEvalOptions)
    model = write_model_header(tmp_path / "glow.safetensors", {"gantool.task": "glow"})
    data = write_folder(tmp_path / "images", 1)
    result = runner.invoke(toy_app(specs=(TOY_SPEC, glow)), ["eval", "toy", "--data", str(data), "--model",
                                                             str(model)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: model '{model}' is a 'glow' model; evaluate it with `gantool eval glow`"]


def test_task_without_default_weights_needs_model(tmp_path):
    strict = dataclasses.replace(TOY_SPEC, eval_without_model=False)
    result = runner.invoke(toy_app(specs=(strict,)), ["eval", "toy", "--data", str(write_folder(tmp_path / "i", 1))])
    assert result.exit_code == 2 and "'eval toy' needs --model" in result.output


# ------------------------------------------------------------------------------------------- the contract


def test_spec_validates_eval_options():
    with pytest.raises(ValueError, match="eval_options must be a dataclass type"):
        dataclasses.replace(TOY_SPEC, eval_options=int)
    with pytest.raises(ValueError, match="eval_without_model needs eval_options"):
        dataclasses.replace(TOY_SPEC, eval_options=None)
    assert TOY_SPEC.option_defaults("eval") == {"limit": 0}


class Bare(Task):
    def build_networks(self):
        return {"generator": torch.nn.Identity()}


class ReturnsList(ToyTask):
    def evaluate(self, networks, data, options, context):
        return [{"image": "a"}]


class MissingField(ToyTask):
    def evaluate(self, networks, data, options, context):
        return EvalResult(rows=[{"image": "a", "psnr": 1.0}, {"image": "b"}],
                          columns=[EvalColumn(name="psnr", header="PSNR", format="bad")])


@pytest.mark.parametrize(("cls", "message"), [
    (Bare, "Bare does not implement evaluate()"),
    (ReturnsList, "ReturnsList.evaluate() returned list, not a gantool.EvalResult"),
    (MissingField, "invalid number format 'bad'; row 1 has no field 'psnr'"),
])
def test_engine_checks_what_evaluate_returns(tmp_path, cls, message):
    spec = dataclasses.replace(TOY_SPEC, implementation=f"{__name__}:{cls.__name__}")
    with pytest.raises(PluginError, match="task 'toy'.*" + message.replace("(", r"\(").replace(")", r"\)")):
        run_evaluation(spec=spec, model_path=None, options=EvalOptions(data=tmp_path, device="cpu"),
                       task_options=ToyEvalOptions())


class Spy(ToyTask):
    """Records what the engine hands to ``evaluate``."""

    seen: dict = {}

    def evaluate(self, networks, data, options, context):
        Spy.seen = dict(channels=self.options.channels, networks=sorted(networks), data=data, options=options,
                        context=context, grad=torch.is_grad_enabled())
        return EvalResult(rows=[], columns=[EvalColumn(name="x", header="X")])


def test_evaluate_gets_the_model_task_and_networks_on_the_device(tmp_path):
    model = toy_model(tmp_path / "toy.safetensors")
    spec = dataclasses.replace(TOY_SPEC, implementation=f"{__name__}:Spy")
    run_evaluation(spec=spec, model_path=model, options=EvalOptions(data=tmp_path, device="cpu"),
                   task_options=ToyEvalOptions(limit=1))
    assert Spy.seen == {"channels": 4, "networks": ["generator"], "data": tmp_path,
                        "options": ToyEvalOptions(limit=1),
                        "context": EvalContext(device=torch.device("cpu"), model=model), "grad": False}


def test_eval_option_clashing_with_a_common_one_leaves_out_only_that_command():
    @dataclasses.dataclass(kw_only=True)
    class Clashing:
        model: str = flag("x", "Clashes with --model.")

    other = TaskSpec(name="other", verb="other", summary="Other.", implementation="gantool.testing:ToyTask",
                     eval_options=Clashing)
    app = toy_app(specs=(TOY_SPEC, other))
    assert any(p.startswith("`eval other` left out") and "'model'" in p for p in app.problems)
    assert runner.invoke(app, ["eval", "toy", "--help"]).exit_code == 0


# --------------------------------------------------------------------------------------- compatibility

OLD_STYLE_PLUGIN = """
from __future__ import annotations
from pathlib import Path
from typing import Annotated
import typer
from gantool import hookimpl
from gantool.cli.eval import JsonOption


@hookimpl
def gantool_register_commands(app):
    from gantool.cli.eval import eval_app, run_eval

    @eval_app(app).command("oldtask")
    def eval_oldtask(data: Annotated[Path, typer.Option("--data")], as_json: JsonOption = False) -> None:
        run_eval("oldtask_eval", None, data, as_json=as_json, title="oldtask", factor=2.0)
"""

OLD_STYLE_EVALUATE = """
from dataclasses import dataclass
from gantool.cli.table import Column, print_table
from gantool.lib.metrics import mean_row


@dataclass
class Row:
    image: str
    score: float


def evaluate(model, data, *, factor):
    rows = [Row(p.stem, factor * i) for i, p in enumerate(sorted(data.iterdir()))]
    return [*rows, mean_row(rows)]


def print_rows(rows, *, title):
    print_table(rows, [Column("Old score", "score")], title=title)
"""


def test_old_style_eval_commands_work_for_one_release_with_a_deprecation_warning(plugin_dist, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "oldtask")
    plugin_dist("gantool-oldtask", {"oldtask": "oldtask_plugin"},
                {"oldtask_plugin": OLD_STYLE_PLUGIN, "oldtask_eval": OLD_STYLE_EVALUATE})
    with pytest.warns(DeprecationWarning, match="eval_app is deprecated"):
        app = build_app(build_plugin_system())
    assert app.problems == []
    data = write_folder(tmp_path / "images", 2)
    with pytest.warns(DeprecationWarning, match="run_eval is deprecated"):
        result = runner.invoke(app, ["eval", "oldtask", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"image": "img0", "score": 0.0}, {"image": "img1", "score": 2.0},
                                         {"image": "mean", "score": 1.0}]
    with pytest.warns(DeprecationWarning) as warned:
        table = runner.invoke(app, ["eval", "oldtask", "--data", str(data)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "Old score" in table.output and "1.00" in table.output
    assert {"run_eval", "print_table"} <= {str(w.message).split()[0].rsplit(".", 1)[-1] for w in warned}


def test_eval_app_returns_the_generated_group_or_makes_one():
    import typer

    from gantool.cli.eval import eval_app

    app = typer.Typer()
    with pytest.warns(DeprecationWarning):
        first = eval_app(app)
        assert eval_app(app) is first and [g.name for g in app.registered_groups] == ["eval"]


def test_plugin_command_named_like_a_generated_eval_command_is_left_out_with_a_warning():
    class Squatter:
        @hookimpl
        def gantool_register_commands(self, app):
            from gantool.cli.eval import eval_app

            @eval_app(app).command("toy")
            def squat() -> None:
                print("squatted")

            @app.command("brighten")  # the toy task's verb
            def also_squat() -> None:
                print("squatted")

    with pytest.warns(DeprecationWarning):
        app = toy_app(("squatter", Squatter()))
    assert sorted(app.problems) == [
        "plugin 'squatter': its command `gantool brighten` clashes with an existing command of that name; left out",
        "plugin 'squatter': its command `gantool eval toy` clashes with an existing command of that name; left out",
    ]
    assert "--limit" in runner.invoke(app, ["eval", "toy", "--help"]).output
    assert "--tile" in runner.invoke(app, ["brighten", "--help"]).output
