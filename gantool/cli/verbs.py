"""The task commands: one command per verb (image or generation), and ``gantool train TASK``.

Several tasks may share a verb (pix2pix and CycleGAN ``translate``; every generator ``generate``): the verb
gets one command with every task's flags, and the model file's ``gantool.task`` picks the task
(:func:`choose_task`). A verb claimed by tasks of both kinds cannot be one command and is refused.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any

import typer

from gantool.cli import launch
from gantool.cli.command import (
    TASKS_PANEL,
    companion_inputs,
    companion_parameters,
    make_command,
    merged_fields,
    refuse_foreign_options,
    resolve_values,
    resolved_data,
    typed_on_command_line,
)
from gantool.cli.report import report_warning
from gantool.errors import CheckpointError, PluginError, UsageError, one_line
from gantool.plugin.common import InferenceOptions, SampleOptions, TrainingOptions
from gantool.plugin.manager import PluginSystem, first_result
from gantool.plugin.options import build, option_fields
from gantool.plugin.spec import TaskSpec
from gantool.weights import missing_model_message, read_metadata


def choose_task(
    system: PluginSystem, verb: str, specs: list[TaskSpec], model: str | None, values: dict[str, Any], *,
    evaluating: bool = False, typed: Collection[str] = (),
) -> tuple[TaskSpec, Path]:
    """Pick the task and weights file for a command: the model file's metadata decides for shared verbs.

    The one way a ``--model`` name becomes a file, for the verbs and ``gantool eval TASK`` alike: through
    the ``gantool_resolve_weights`` hook, or the task's ``default_weights`` when no model is given (on a
    shared verb, :func:`default_task` picks which, from the option names in ``typed``: those typed on the
    command line). A model of another installed task is a ``UsageError`` pointing at the command that runs
    it (``evaluating``: its ``gantool eval`` command).
    """
    def hook(*, task: TaskSpec, name: str) -> Any:
        return resolve_weights(system, task, name)

    if model is None:
        spec = default_task(verb, specs, typed)
        name = spec.default_weights_for(build(spec.infer_options, values))
        path = hook(task=spec, name=name) if name is not None else None
        if path is None:
            raise CheckpointError(f"bundled model {name!r} for task {spec.name!r} was not found; "
                                  "pass --model PATH or set GANTOOL_MODELS to the folder holding it")
        return spec, Path(path)
    path = next((p for p in (hook(task=spec, name=model) for spec in specs) if p is not None), None)
    if path is None:
        raise CheckpointError(missing_model_message(model))
    task_name = read_metadata(Path(path)).get("gantool.task", "")
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


def default_task(verb: str, specs: list[TaskSpec], typed: Collection[str] = ()) -> TaskSpec:
    """The task whose ``default_weights`` a verb runs without ``--model``.

    Of the tasks with default weights, those whose own options include every task flag in ``typed``
    remain (``--direction`` rules out a task without it); of several, the one with ``verb_default``. No
    task, or several without one marked, is a one-line ``UsageError`` asking for ``--model``.
    """
    task_flags = {option.name for spec in specs for option in option_fields(spec.options_of("infer"))}
    wanted = task_flags.intersection(typed)
    fitting = [spec for spec in specs if spec.default_weights
               and wanted <= {option.name for option in option_fields(spec.options_of("infer"))}]
    if len(fitting) > 1:
        fitting = [spec for spec in fitting if spec.verb_default]
    if len(fitting) == 1:
        return fitting[0]
    why = f"it runs {_either(specs)} models, and the model file says which (see `gantool models list`)"
    if wanted and not fitting and any(spec.default_weights for spec in specs):
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(wanted))
        why = f"no default model takes {flags}; {why}"
    raise UsageError(f"'{verb}' needs --model: {why}")


def resolve_weights(system: PluginSystem, spec: TaskSpec, name: str) -> Any:
    """The ``gantool_resolve_weights`` hook's answer; a plugin whose resolver raises is skipped with a
    warning line, so one broken plugin cannot break every ``--model`` for everyone."""
    def warn(plugin: str, error: BaseException) -> None:
        report_warning(f"plugin {plugin!r}: gantool_resolve_weights failed ({one_line(error)}); ignored")

    return first_result(system.manager, "gantool_resolve_weights", {"task": spec, "name": name}, warn)


def add_verb(app: typer.Typer, system: PluginSystem, verb: str, specs: list[TaskSpec]) -> None:
    """One command for ``verb``, of the kind its tasks share; tasks of two kinds raise ``PluginError``."""
    kinds = {spec.kind for spec in specs}
    if len(kinds) > 1:
        claims = "; ".join(f"{kind} task(s) " + ", ".join(f"{s.name!r} (plugin {_owner(system, s)!r})"
                                                         for s in specs if s.kind == kind)
                           for kind in sorted(kinds))
        raise PluginError(f"claimed by tasks of two kinds: {claims}; one of them must use another verb")
    marked = [spec for spec in specs if spec.verb_default]
    if len(marked) > 1:
        claims = ", ".join(f"{s.name!r} (plugin {_owner(system, s)!r})" for s in marked)
        raise PluginError(f"tasks {claims} all set verb_default; at most one task of a verb may")
    if specs[0].kind == "sample":
        add_sample_verb(app, system, verb, specs)
    else:
        add_image_verb(app, system, verb, specs)


def verb_help(verb: str, specs: list[TaskSpec]) -> tuple[str, str]:
    """``(summary, full help)`` of a verb: the task's own summary, or one line naming every task sharing it."""
    if len(specs) == 1:
        return specs[0].summary, specs[0].summary
    summary = f"{verb.capitalize()} with a {_either(specs)} model (the model file picks the task)."
    return summary, "\n\n".join([summary, *(f"{spec.name}: {spec.summary}" for spec in specs)])


def _either(specs: list[TaskSpec]) -> str:
    names = [spec.name for spec in specs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _owner(system: PluginSystem, spec: TaskSpec) -> str:
    try:
        return system.registry.owner(spec.name)
    except KeyError:
        return "?"


def add_image_verb(app: typer.Typer, system: PluginSystem, verb: str, specs: list[TaskSpec]) -> None:
    """``gantool VERB INPUTS... [--NAME FILE|DIR|GLOB]...``: the primary images are the positional
    argument; each further input a task declares (``TaskSpec.inputs``) becomes one option."""
    fields = merged_fields(InferenceOptions, specs, "infer")
    companions = companion_inputs(specs, fields)
    import inspect

    inputs = inspect.Parameter(
        "inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.",
                                                        show_default=False)],
    )

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = build(InferenceOptions, values)
        spec, model_path = choose_task(system, verb, specs, options.model, values, typed=_typed(ctx, fields))
        refuse_foreign_options(ctx, spec, specs, "infer")
        extra = {}
        if companions:  # only multi-input verbs pass it, so the seam's single-input call is unchanged
            extra["companions"] = {name: kwargs[name] for name in companions if kwargs.get(name) is not None}
        launch.run_inference(spec=spec, model_path=model_path, options=options,
                             task_options=build(spec.infer_options, values), inputs=list(kwargs["inputs"]),
                             **extra)

    summary, full = verb_help(verb, specs)
    parameters = [inputs, *companion_parameters(companions)]
    app.command(verb, rich_help_panel=TASKS_PANEL, help=full, short_help=summary)(
        make_command(fields, body, parameters, full))


def add_sample_verb(app: typer.Typer, system: PluginSystem, verb: str, specs: list[TaskSpec]) -> None:
    """``gantool generate`` and other verbs of ``kind="sample"`` tasks: no inputs, ``-n``, ``--seed`` ..."""
    fields = merged_fields(SampleOptions, specs, "infer")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = build(SampleOptions, values)
        spec, model_path = choose_task(system, verb, specs, options.model, values, typed=_typed(ctx, fields))
        refuse_foreign_options(ctx, spec, specs, "infer")
        launch.run_sampling(spec=spec, model_path=model_path, options=options,
                            task_options=build(spec.infer_options, values))

    summary, full = verb_help(verb, specs)
    app.command(verb, rich_help_panel=TASKS_PANEL, help=full, short_help=summary)(
        make_command(fields, body, [], full))


def add_train_command(train_app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    fields = [dataclasses.replace(option, override=spec.train_defaults[option.name])
              if option.name in spec.train_defaults else option
              for option in merged_fields(TrainingOptions, [spec], "train")]

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = resolve_values(ctx, fields, kwargs)
        options = resolved_data(build(TrainingOptions, values), f"train {spec.name}")
        launch.run_training(spec=system.registry.get(spec.name), options=options,
                            task_options=build(spec.train_options, values), command=_command_line())

    summary = f"Train a {spec.name} model: {spec.summary}"
    train_app.command(spec.name, help=summary)(make_command(fields, body, [], summary))


def _typed(ctx: typer.Context, fields: list[Any]) -> set[str]:
    return typed_on_command_line(ctx, [option.name for option in fields])


def _command_line() -> str:
    return shlex.join(["gantool", *sys.argv[1:]])
