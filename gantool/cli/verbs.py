"""The task commands: one verb per registered verb (image or generation), and ``gantool train TASK``."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gantool.catalog import resolve_data
from gantool.cli import launch
from gantool.cli.command import TASKS_PANEL, make_command, merged_fields, resolve_values
from gantool.errors import CheckpointError, UsageError
from gantool.plugin.common import InferenceOptions, SampleOptions, TrainingOptions
from gantool.plugin.manager import PluginSystem
from gantool.plugin.options import build
from gantool.plugin.spec import TaskSpec
from gantool.weights import read_metadata


def choose_task(
    system: PluginSystem, verb: str, specs: list[TaskSpec], model: str | None, values: dict[str, Any], *,
    evaluating: bool = False,
) -> tuple[TaskSpec, Path]:
    """Pick the task and weights file for a command: the model file's metadata decides for shared verbs.

    The one way a ``--model`` name becomes a file, for the verbs and ``gantool eval TASK`` alike: through
    the ``gantool_resolve_weights`` hook, or the task's ``default_weights`` when no model is given. A model
    of another installed task is a ``UsageError`` pointing at the command that runs it (``evaluating``:
    its ``gantool eval`` command).
    """
    hook = system.manager.hook.gantool_resolve_weights
    if model is None:
        defaults = [spec for spec in specs if spec.default_weights]
        if len(defaults) != 1:
            names = " and ".join(spec.name for spec in specs)
            raise UsageError(f"'{verb}' needs --model (it runs {names} models; see `gantool models list`)")
        spec = defaults[0]
        name = spec.default_weights_for(build(spec.infer_options, values))
        path = hook(task=spec, name=name)
        if path is None:
            raise CheckpointError(f"bundled model {name!r} for task {spec.name!r} was not found; "
                                  "pass --model PATH or set GANTOOL_MODELS to the folder holding it")
        return spec, Path(path)
    path = next((p for p in (hook(task=spec, name=model) for spec in specs) if p is not None), None)
    if path is None:
        hint = " (no such file)" if "/" in model or model.endswith(".safetensors") else ""
        raise CheckpointError(f"model {model!r} not found{hint}; see `gantool models list`")
    task_name = read_metadata(Path(path)).get("gantool.task")
    for spec in specs:
        if spec.name == task_name:
            return system.registry.get(spec.name), Path(path)
    if task_name in system.registry:
        other = system.registry.get(task_name)
        if not evaluating:
            raise UsageError(f"model '{path}' is a {task_name!r} model; run it with `gantool {other.verb}`")
        hint = (f"evaluate it with `gantool eval {other.name}`" if other.eval_options is not None
                else f"`gantool {verb}` needs a {specs[0].name!r} model")
        raise UsageError(f"model '{path}' is a {task_name!r} model; {hint}")
    raise CheckpointError(f"model '{path}' names task {task_name!r}, which no installed plugin provides")


def add_image_verb(app: typer.Typer, system: PluginSystem, verb: str, specs: list[TaskSpec]) -> None:
    fields = merged_fields(InferenceOptions, specs, "infer")
    import inspect

    inputs = inspect.Parameter(
        "inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.",
                                                        show_default=False)],
    )

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = build(InferenceOptions, values)
        spec, model_path = choose_task(system, verb, specs, options.model, values)
        launch.run_inference(spec=spec, model_path=model_path, options=options,
                             task_options=build(spec.infer_options, values), inputs=list(kwargs["inputs"]))

    summary = specs[0].summary if len(specs) == 1 else f"Run {', '.join(s.name for s in specs)} models."
    app.command(verb, rich_help_panel=TASKS_PANEL, help=summary)(make_command(fields, body, [inputs], summary))


def add_sample_verb(app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    fields = merged_fields(SampleOptions, [spec], "infer")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = build(SampleOptions, values)
        chosen, model_path = choose_task(system, spec.verb or spec.name, [spec], options.model, values)
        launch.run_sampling(spec=chosen, model_path=model_path, options=options,
                            task_options=build(spec.infer_options, values))

    app.command(spec.verb, rich_help_panel=TASKS_PANEL, help=spec.summary)(
        make_command(fields, body, [], spec.summary))


def add_train_command(train_app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    fields = merged_fields(TrainingOptions, [spec], "train")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = build(TrainingOptions, values)
        if options.data is None:
            raise UsageError(f"`gantool train {spec.name}` needs --data DIR (or `data = ...` in --config)")
        options = dataclasses.replace(options, data=resolve_data(options.data))  # a folder, or a known name
        launch.run_training(spec=system.registry.get(spec.name), options=options,
                            task_options=build(spec.train_options, values), command=_command_line())

    summary = f"Train a {spec.name} model: {spec.summary}"
    train_app.command(spec.name, help=summary)(make_command(fields, body, [], summary))


def _command_line() -> str:
    return shlex.join(["gantool", *sys.argv[1:]])
