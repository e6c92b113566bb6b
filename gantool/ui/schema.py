"""What the page needs to know about each task, read from the registry (no torch, no FastAPI).

Options are described from the same :class:`~gantool.plugin.options.OptionField` list the CLI turns into
flags (:func:`gantool.cli.command.merged_fields` reads them with :func:`~gantool.plugin.options.option_fields`),
so a third-party task's options appear on the page exactly as its flags appear in ``--help``.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from gantool.errors import UsageError
from gantool.plugin.common import InferenceOptions, SampleOptions
from gantool.plugin.manager import PluginSystem
from gantool.plugin.options import OptionField, option_fields, parse_list, tuple_element
from gantool.plugin.spec import TaskSpec
from gantool.weights import list_models

#: The shared flags the page may set; the others (output, model, overwrite, shard ...) belong to the server.
IMAGE_COMMON = ("device", "precision", "tile", "tile_overlap", "ext", "quality")
SAMPLE_COMMON = ("device", "precision", "count", "seed", "label", "truncation", "grid", "ext")


def describe_option(option: OptionField) -> dict[str, Any]:
    """One option as JSON: name, CLI flag, type, default, help, min/max, choices, whether None is allowed."""
    extra = option.field.metadata
    annotation = option.annotation
    args = typing.get_args(annotation)
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), annotation) if nullable else annotation
    choices: list[Any] | None = None
    element = tuple_element(base)
    if typing.get_origin(base) is typing.Literal:
        kind, choices = "choice", list(typing.get_args(base))
    elif element is not None:
        kind = f"list[{element.__name__}]"
    else:
        kind = {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}.get(base, "str")
    default = option.default
    if isinstance(default, tuple):
        default = list(default)
    elif isinstance(default, Path):
        default = str(default)
    flag_name = extra.get("flags", f"--{option.name.replace('_', '-')}").split("/")[0]
    return {"name": option.name, "flag": flag_name, "type": kind, "default": None if default is ... else default,
            "help": extra.get("help", ""), "min": extra.get("min"), "max": extra.get("max"), "choices": choices,
            "nullable": nullable, "panel": extra.get("panel")}


def common_fields(spec: TaskSpec) -> list[OptionField]:
    """The shared flags of the task's kind that the page offers (in the dataclass order)."""
    owner, names = (SampleOptions, SAMPLE_COMMON) if spec.kind == "sample" else (InferenceOptions, IMAGE_COMMON)
    return [option for option in option_fields(owner) if option.name in names]


def describe_task(system: PluginSystem, spec: TaskSpec, models: list[dict[str, Any]]) -> dict[str, Any]:
    """One task as JSON: name, verb, kind, inputs, its own and the common options, its models."""
    try:
        plugin = system.registry.owner(spec.name)
    except KeyError:
        plugin = None
    return {
        "name": spec.name, "verb": spec.verb or spec.name, "kind": spec.kind, "summary": spec.summary,
        "plugin": plugin, "scale": spec.scale, "default_model": spec.default_weights,
        "inputs": [{"name": item.name, "help": item.help, "channels": item.channels, "required": item.required,
                    "alpha": item.alpha, "resize": item.resize} for item in spec.inputs],
        "options": [describe_option(option) for option in option_fields(spec.infer_options)],
        "common": [describe_option(option) for option in common_fields(spec)],
        "models": [model for model in models if model["task"] == spec.name],
    }


def model_rows() -> list[dict[str, Any]]:
    """``gantool models list --json`` rows (the path only as a name: the page never needs server paths)."""
    return [{"name": entry.name, "task": entry.task, "bytes": entry.size_bytes, "summary": entry.summary,
             "error": entry.error} for entry in list_models()]


def describe_tasks(system: PluginSystem) -> list[dict[str, Any]]:
    """Every registered task, sorted by name; a task no model file exists for is listed too."""
    models = model_rows()
    return [describe_task(system, spec, models) for spec in sorted(system.registry.specs(), key=lambda s: s.name)]


def coerce_values(spec: TaskSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """The page's JSON option values as the option dataclasses' types, checked like the CLI checks flags.

    Raises ``UsageError`` (one line) for an unknown name, a wrong type, a value out of min/max or choices.
    """
    fields = {option.name: option for option in [*common_fields(spec), *option_fields(spec.infer_options)]}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        option = fields.get(name)
        if option is None:
            raise UsageError(f"task {spec.name!r} has no option {name!r} (it takes {', '.join(fields)})")
        values[name] = _coerce(describe_option(option), value)
    return values


def _coerce(info: dict[str, Any], value: Any) -> Any:
    name, kind = info["name"], info["type"]
    if value is None or (value == "" and info["nullable"]):
        if info["nullable"]:
            return None
        raise UsageError(f"option {name!r} needs a value")
    try:
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            converted: Any = value
        elif kind in ("int", "float"):
            if isinstance(value, bool):
                raise ValueError
            converted = int(value) if kind == "int" else float(value)
            if kind == "int" and float(value) != converted:
                raise ValueError
        elif kind.startswith("list["):
            element = {"list[int]": int, "list[float]": float, "list[str]": str}[kind]
            items = value if isinstance(value, list) else parse_list(str(value), element)
            converted = tuple(element(item) for item in items)
        elif kind == "path":
            converted = Path(str(value))
        else:
            converted = str(value)
    except (TypeError, ValueError):
        raise UsageError(f"option {name!r} must be of type {kind}, got {value!r}") from None
    if info["choices"] is not None and converted not in info["choices"]:
        matching = [choice for choice in info["choices"] if str(choice) == str(value)]  # a page sends text
        if matching:
            return matching[0]
        raise UsageError(f"option {name!r} must be one of {', '.join(map(str, info['choices']))}, got {value!r}")
    for item in converted if isinstance(converted, tuple) else (converted,):
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if info["min"] is not None and item < info["min"]:
                raise UsageError(f"option {name!r} must be at least {info['min']}, got {item}")
            if info["max"] is not None and item > info["max"]:
                raise UsageError(f"option {name!r} must be at most {info['max']}, got {item}")
    return converted
