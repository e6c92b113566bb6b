"""Option machinery: tuple options (CLI comma lists, TOML arrays, saved configs), redefault, option groups, TTUR."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool import flag
from gantool.cli import launch
from gantool.cli.app import build_app, main
from gantool.errors import UsageError
from gantool.lib.options import AdamOptions, CriticOptions, GanLossOptions
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.options import (
    OptimizerOptions,
    coerce,
    dump_toml,
    load_config,
    merge_values,
    option_fields,
    parse_list,
    redefault,
    to_plain,
)

runner = CliRunner()


@dataclass(kw_only=True)
class Pyramid:
    attention_at: tuple[int, ...] = flag((16, 32), "Resolutions with self-attention.", min=4)
    weights: tuple[float, ...] = flag((), "Per-level loss weights.")
    names: tuple[str, ...] | None = flag(None, "Level names.")


# ------------------------------------------------------------------------------------------ tuple options


def test_tuple_fields_are_supported_options() -> None:
    assert [option.name for option in option_fields(Pyramid)] == ["attention_at", "weights", "names"]


def test_unsupported_collections_are_still_refused() -> None:
    @dataclass(kw_only=True)
    class Bad:
        sizes: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(ValueError, match="tuple\\[int \\| float \\| str, ...\\]"):
        option_fields(Bad)


def test_parse_list_reads_comma_lists() -> None:
    assert parse_list("16,32", int) == (16, 32)
    assert parse_list(" 0.5 , 1e-3", float) == (0.5, 1e-3)
    assert parse_list("a,b", str) == ("a", "b")
    assert parse_list("", int) == ()


@pytest.mark.parametrize(("text", "element", "message"), [
    ("16,x", int, "element 2 ('x') is not an int"),
    ("16,1.5", int, "element 2 ('1.5') is not an int"),
    ("1,,2", float, "element 2 is empty"),
    ("0.5,high", float, "element 2 ('high') is not a number"),
])
def test_parse_list_names_the_bad_element(text: str, element: type, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        parse_list(text, element)


def test_toml_arrays_become_tuples_and_bad_elements_are_named(tmp_path: Path) -> None:
    fields = option_fields(Pyramid)
    defaults = {option.name: option.default for option in fields}
    config = tmp_path / "run.toml"
    config.write_text('attention-at = [8, 64]\nweights = [1, 0.5]\nnames = ["low", "high"]\n')
    values = merge_values(fields, defaults, set(), load_config(config), config)
    assert values == {"attention_at": (8, 64), "weights": (1.0, 0.5), "names": ("low", "high")}
    assert isinstance(values["weights"][0], float)
    config.write_text('attention-at = [8, "x"]\nweights = 3\n')
    with pytest.raises(UsageError, match="attention_at: element 2 .*weights: expected a list of float") as raised:
        merge_values(fields, defaults, set(), load_config(config), config)
    assert "\n" not in str(raised.value)


def test_saved_run_config_round_trips_tuples(tmp_path: Path) -> None:
    options = Pyramid(attention_at=(4, 8, 16), weights=(0.25, 1e-5), names=("a b", 'q"t'))
    saved = tmp_path / "config.toml"
    saved.write_text("# gantool run\n" + dump_toml(to_plain(options)))
    fields = option_fields(Pyramid)
    values = merge_values(fields, {o.name: o.default for o in fields}, set(), load_config(saved), saved)
    assert Pyramid(**values) == options
    assert "attention_at = [4, 8, 16]" in saved.read_text()


def test_model_metadata_lists_come_back_as_tuples() -> None:
    """Exported models store options as JSON, where tuples become lists; coerce restores them."""
    assert coerce([16, 32], tuple[int, ...]) == (16, 32)
    assert coerce(None, tuple[str, ...] | None) is None


PYRAMID_PLUGIN = """
from dataclasses import dataclass
from gantool import TaskSpec, flag, hookimpl


@dataclass(kw_only=True)
class PyramidTrain:
    attention_at: tuple[int, ...] = flag((16, 32), "Resolutions with self-attention.", min=4)
    lr: float = flag(2e-4, "Learning rate.")


@hookimpl
def gantool_register_tasks(register):
    register(TaskSpec(name="pyramid", verb="pyramidize", summary="Tuple options (tests).",
                      implementation="gantool.testing:ToyTask", train_options=PyramidTrain))
"""


@pytest.fixture
def pyramid_app(plugin_dist, monkeypatch):
    monkeypatch.setenv("GANTOOL_PLUGINS", "pyramid")
    plugin_dist("gantool-pyramid", {"pyramid": "pyramid_plugin"}, {"pyramid_plugin": PYRAMID_PLUGIN})
    return build_app(build_plugin_system())


@pytest.fixture
def calls(monkeypatch):
    recorded: dict[str, dict] = {}
    monkeypatch.setattr(launch, "run_training", lambda **kwargs: recorded.__setitem__("run_training", kwargs))
    return recorded


def test_tuple_option_from_the_command_line(pyramid_app, calls, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    result = runner.invoke(pyramid_app, ["train", "pyramid", "--data", "data", "--attention-at", "8,64"])
    assert result.exit_code == 0, result.output
    assert calls["run_training"]["task_options"].attention_at == (8, 64)
    result = runner.invoke(pyramid_app, ["train", "pyramid", "--data", "data"])
    assert calls["run_training"]["task_options"].attention_at == (16, 32)
    help_text = runner.invoke(pyramid_app, ["train", "pyramid", "--help"], env={"COLUMNS": "200"}).output
    assert "--attention-at" in help_text and "INT,..." in help_text and "16,32" in help_text


def test_tuple_option_from_a_config_file_loses_to_the_command_line(pyramid_app, calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "run.toml").write_text('data = "data"\nattention-at = [4, 8]\n')
    assert runner.invoke(pyramid_app, ["train", "pyramid", "--config", "run.toml"]).exit_code == 0
    assert calls["run_training"]["task_options"].attention_at == (4, 8)
    assert runner.invoke(pyramid_app, ["train", "pyramid", "--config", "run.toml", "--attention-at", "32"]
                         ).exit_code == 0
    assert calls["run_training"]["task_options"].attention_at == (32,)


@pytest.mark.parametrize(("value", "message"), [("16,x", "element 2 ('x') is not an int"),
                                                ("16,2", "element 2 (2) must be at least 4")])
def test_malformed_tuple_option_is_a_one_line_usage_error(pyramid_app, calls, capsys, value, message) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "pyramid", "--data", ".", "--attention-at", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--attention-at" in err[0] and message in err[0], err
    assert "run_training" not in calls


# ----------------------------------------------------------------------------------------- option groups


@dataclass(kw_only=True)
class Composed(CriticOptions, GanLossOptions, AdamOptions):
    gan_loss: str = redefault(GanLossOptions, "gan_loss", "hinge")
    l1_weight: float = flag(10.0, "Weight of the L1 loss.")


def test_groups_compose_and_redefault_keeps_the_help() -> None:
    names = [option.name for option in option_fields(Composed)]
    assert {"critic_width", "critic_layers", "spectral_norm", "gan_loss", "adversarial_weight", "lr", "lr_critic",
            "beta1", "beta2", "l1_weight"} == set(names)
    options = Composed()
    assert options.gan_loss == "hinge" and options.lr == 2e-4 and options.lr_critic is None
    ours = {f.name: f for f in dataclasses.fields(Composed)}["gan_loss"]
    theirs = {f.name: f for f in dataclasses.fields(GanLossOptions)}["gan_loss"]
    assert ours.metadata == theirs.metadata and GanLossOptions().gan_loss == "vanilla"
    with pytest.raises(ValueError, match="has no option 'gan_los'"):
        redefault(GanLossOptions, "gan_los", "x")


def test_adam_options_implement_the_optimizer_protocol() -> None:
    options = Composed(lr=1e-4, lr_critic=4e-4, beta1=0.0, beta2=0.9)
    assert isinstance(options, OptimizerOptions)
    assert options.adam_settings("generator") == (1e-4, (0.0, 0.9))
    assert options.adam_settings("critic") == (4e-4, (0.0, 0.9))
    assert Composed(lr=3e-4).adam_settings("critic") == (3e-4, (0.5, 0.999))


@pytest.mark.parametrize("task", ["pix2pix", "colorize", "cyclegan", "superres"])
def test_shared_groups_are_flags_of_every_task(task: str) -> None:
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["train", task, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in ("--critic-width", "--critic-layers", "--spectral-norm", "--gan-loss", "--adversarial-weight",
                 "--lr ", "--lr-critic", "--beta1", "--beta2"):
        assert name in result.output, (task, name)
    assert "relativistic" in result.output


def test_each_task_keeps_its_defaults() -> None:
    from gantool_cyclegan.options import CycleGANTrainOptions
    from gantool_pix2pix.options import Pix2PixTrainOptions
    from gantool_superres.options import SuperResTrainOptions

    cyclegan, pix2pix, superres = CycleGANTrainOptions(), Pix2PixTrainOptions(), SuperResTrainOptions()
    assert (cyclegan.gan_loss, cyclegan.lr, cyclegan.beta1, cyclegan.spectral_norm) == ("lsgan", 2e-4, 0.5, False)
    assert (pix2pix.gan_loss, pix2pix.lr, pix2pix.beta1, pix2pix.critic_layers) == ("vanilla", 2e-4, 0.5, 3)
    assert (superres.gan_loss, superres.lr, superres.spectral_norm, superres.adversarial_weight) == (
        "vanilla", None, True, 0.1)
    assert superres.adam_settings("generator") == (2e-4, (0.9, 0.99))  # pretrain stage's default lr


def test_crop_too_small_for_the_critic_is_refused_by_every_task() -> None:
    from gantool_cyclegan.options import CycleGANTrainOptions
    from gantool_pix2pix.options import Pix2PixTrainOptions

    for make in (lambda: Pix2PixTrainOptions(crop=16, critic_layers=3, depth=2),
                 lambda: CycleGANTrainOptions(crop=16, load_size=16, critic_layers=3)):
        with pytest.raises(UsageError, match="--crop 16 is too small for --critic-layers 3 \\(at least 24\\)"):
            make()


# ------------------------------------------------------------------------------------------------- TTUR


def _lrs(optimizers: dict) -> dict[str, tuple[float, tuple[float, float]]]:
    return {name: (opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]) for name, opt in optimizers.items()}


def test_ttur_gives_the_critic_its_own_learning_rate() -> None:
    from gantool_pix2pix import SPEC as PIX2PIX
    from gantool_pix2pix.options import Pix2PixTrainOptions

    options = Pix2PixTrainOptions(crop=32, width=8, critic_width=8, critic_layers=2, lr=1e-4, lr_critic=4e-4,
                                  beta1=0.0, beta2=0.9)
    task = PIX2PIX.load_implementation()(PIX2PIX, options)
    assert _lrs(task.build_optimizers(task.build_networks())) == {"generator": (1e-4, (0.0, 0.9)),
                                                                   "critic": (4e-4, (0.0, 0.9))}
    same = PIX2PIX.load_implementation()(PIX2PIX, dataclasses.replace(options, lr_critic=None))
    assert _lrs(same.build_optimizers(same.build_networks()))["critic"] == (1e-4, (0.0, 0.9))


def test_ttur_in_tasks_with_their_own_optimizers() -> None:
    from gantool_cyclegan import SPEC as CYCLEGAN
    from gantool_cyclegan.options import CycleGANTrainOptions
    from gantool_superres import SPEC as SUPERRES
    from gantool_superres.options import SuperResTrainOptions

    cyclegan = CYCLEGAN.load_implementation()(CYCLEGAN, CycleGANTrainOptions(
        blocks=1, width=4, critic_width=4, critic_layers=1, load_size=16, crop=16, lr_critic=5e-4))
    assert _lrs(cyclegan.build_optimizers(cyclegan.build_networks())) == {
        "generators": (2e-4, (0.5, 0.999)), "critics": (5e-4, (0.5, 0.999))}
    superres = SUPERRES.load_implementation()(SUPERRES, SuperResTrainOptions(
        stage="gan", width=8, blocks=1, critic_width=8, crop=32, perceptual_weight=0.0, lr_critic=3e-4))
    assert _lrs(superres.build_optimizers(superres.build_networks())) == {
        "generator": (1e-4, (0.9, 0.99)), "critic": (3e-4, (0.9, 0.99))}


def test_options_without_the_adam_group_keep_the_old_default() -> None:
    """The example plugin and the toy task declare a plain ``lr`` field: it still sets every network's rate."""
    from gantool.testing import TOY_SPEC, ToyTask, ToyTrainOptions

    task = ToyTask(TOY_SPEC, ToyTrainOptions(lr=1e-3))
    assert not isinstance(task.options, OptimizerOptions)
    assert _lrs(task.build_optimizers(task.build_networks())) == {"generator": (1e-3, (0.5, 0.999)),
                                                                   "critic": (1e-3, (0.5, 0.999))}
    assert task.network_role("generator") == "generator" and task.network_role("critic") == "critic"

