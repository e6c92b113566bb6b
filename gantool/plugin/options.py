"""Option dataclasses: ``flag()``, their fields, config files and saved run configs (no Typer, no torch).

The CLI turns the same fields into flags (:mod:`gantool.cli.params`), so plugins write no Typer code.

A field ``lambda_pixel: float = flag(1.0, "Weight of the L1 loss.")`` becomes ``--lambda-pixel FLOAT``
with its help text; a ``bool`` becomes ``--name/--no-name``; a ``Literal`` becomes a choice; a
``tuple[int, ...]`` (or of ``float``/``str``) becomes a comma list, ``--attention-at 16,32``, and a TOML
array in config files. Values are merged in this order: dataclass default < ``--config run.toml`` < flags
typed on the command line.

Option groups compose by dataclass inheritance (``class MyOptions(CriticOptions, AdamOptions)``, all
``kw_only``); :func:`redefault` gives an inherited field another default without repeating its help.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from gantool.errors import UsageError
from gantool.plugin.registry import suggest

SUPPORTED_TYPES = (bool, int, float, str, Path)
#: Element types of tuple options (``tuple[int, ...]`` and so on).
TUPLE_ELEMENT_TYPES = (int, float, str)

#: What a network is to the default optimizer: generators and critics may get different settings (TTUR).
NetworkRole = Literal["generator", "critic"]


def flag(default: Any, help: str, **extra: Any) -> Any:  # noqa: A002 - mirrors Typer's name
    """A dataclass field with CLI help text (``metadata["help"]``) and optional CLI extras.

    Extras understood by ``gantool.options``: ``short`` (``"-o"``), ``flags`` (full declaration such as
    ``"--overwrite/--skip-existing"``), ``panel`` (help panel), ``min``/``max`` for numbers.
    """
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def redefault(owner: type, name: str, default: Any, **extra: Any) -> Any:
    """The field ``name`` of option dataclass ``owner`` with another default (and optionally other extras).

    For a task that inherits an option group but wants its own default, without repeating the help::

        @dataclass(kw_only=True)
        class CycleGANTrainOptions(GanLossOptions):
            gan_loss: GanLoss = redefault(GanLossOptions, "gan_loss", "lsgan")

    ``extra`` replaces metadata such as ``help``, ``min`` or ``panel``. Raises ``ValueError`` for an
    unknown field name.
    """
    fields = {field.name: field for field in dataclasses.fields(owner)}
    if name not in fields:
        raise ValueError(f"{owner.__name__} has no option {name!r}; it has {', '.join(fields)}")
    return dataclasses.field(default=default, metadata={**fields[name].metadata, **extra})


@runtime_checkable
class OptimizerOptions(Protocol):
    """Train options that choose the default optimizer's settings per network role.

    :class:`gantool.lib.options.AdamOptions` implements it; ``Task.build_optimizers`` asks it for each
    network's ``(lr, (beta1, beta2))``, so a critic can get ``--lr-critic`` (two time-scale updates).
    """

    def adam_settings(self, role: NetworkRole) -> tuple[float, tuple[float, float]]:
        """Adam's learning rate and betas for networks of ``role``."""
        ...


#: :attr:`OptionField.override` when the field keeps its own default.
NO_OVERRIDE: Any = type("NoOverride", (), {"__repr__": lambda self: "NO_OVERRIDE"})()


@dataclasses.dataclass(frozen=True)
class OptionField:
    """One dataclass field seen as a CLI option, remembering which dataclass it belongs to."""

    owner: type
    field: dataclasses.Field
    annotation: Any
    #: A default that replaces the field's own (a task's ``TaskSpec.train_defaults``); NO_OVERRIDE if none.
    override: Any = NO_OVERRIDE

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def default(self) -> Any:
        if self.override is not NO_OVERRIDE:
            return self.override
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return ...


def option_fields(*option_classes: type | None) -> list[OptionField]:
    """The fields of several option dataclasses, in order; a name used twice raises ``ValueError``."""
    found: dict[str, OptionField] = {}
    for option_class in option_classes:
        if option_class is None:
            continue
        hints = typing.get_type_hints(option_class)
        for field in dataclasses.fields(option_class):
            if not field.init:
                continue
            if field.name in found:
                raise ValueError(
                    f"option {field.name!r} of {option_class.__name__} clashes with "
                    f"{found[field.name].owner.__name__}.{field.name}; rename it"
                )
            _check_supported(option_class, field.name, hints[field.name])
            found[field.name] = OptionField(owner=option_class, field=field, annotation=hints[field.name])
    return list(found.values())


def _check_supported(owner: type, name: str, annotation: Any) -> None:
    base = _strip_optional(annotation)
    if base in SUPPORTED_TYPES or typing.get_origin(base) is typing.Literal or tuple_element(base) is not None:
        return
    raise ValueError(f"option {owner.__name__}.{name} has type {annotation!r}; use bool, int, float, str, "
                     "Path, a Literal, tuple[int | float | str, ...], or one of these | None")


def tuple_element(annotation: Any) -> type | None:
    """``int`` for ``tuple[int, ...]`` (or ``tuple[int, ...] | None``; likewise float, str); else ``None``."""
    base = _strip_optional(annotation)
    if typing.get_origin(base) is tuple:
        args = typing.get_args(base)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in TUPLE_ELEMENT_TYPES:
            return args[0]
    return None


def parse_list(text: str, element: type) -> tuple[Any, ...]:
    """A comma list as typed on the command line (``16,32``) to a tuple of ``element``; ``""`` is empty.

    Raises ``ValueError`` naming the first bad element and its position.
    """
    if not text.strip():
        return ()
    return tuple(_list_element(part.strip(), element, index)
                 for index, part in enumerate(text.split(","), start=1))


def format_list(values: Any) -> str:
    """The comma-list form of a tuple option's value, as :func:`parse_list` reads it."""
    return ",".join(str(value) for value in values)


def _list_element(value: Any, element: type, index: int) -> Any:
    if isinstance(value, str) and not value:
        raise ValueError(f"element {index} is empty")
    if isinstance(value, str) and element is not str:
        try:
            return element(value)
        except ValueError:
            raise ValueError(f"element {index} ({value!r}) is not {'an int' if element is int else 'a number'}"
                             ) from None
    try:
        return coerce(value, element)
    except ValueError as error:
        raise ValueError(f"element {index}: {error}") from None


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def load_config(path: Path) -> dict[str, Any]:
    """Read a flat TOML config (keys are option names with ``_`` or ``-``); sections are not used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"config file '{path}' does not exist") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"config file '{path}' is not UTF-8 text (bad byte at offset {error.start})") from None
    except OSError as error:
        raise UsageError(f"cannot read config file '{path}': {error.strerror or error}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file '{path}' is not valid TOML: {error}") from None
    return {key.replace("-", "_"): value for key, value in values.items()}


def merge_values(
    fields: list[OptionField],
    typed: Mapping[str, Any],
    from_command_line: set[str],
    config: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
) -> dict[str, Any]:
    """Final values: typed flags win over the config file, which wins over defaults.

    Every unknown or ill-typed config key is reported at once, with a suggestion.
    """
    known = {option.name: option for option in fields}
    values = {name: typed[name] for name in known}
    problems = []
    for key, value in (config or {}).items():
        if key not in known:
            problems.append(f"unknown option {key!r}{suggest(key, list(known))}")
            continue
        if key in from_command_line:
            continue
        try:
            values[key] = check_range(known[key], coerce(value, known[key].annotation))
        except ValueError as error:
            problems.append(f"{key}: {error}")
    if problems:
        raise UsageError(f"config file '{config_path}': " + "; ".join(problems))
    return values


def coerce(value: Any, annotation: Any) -> Any:
    """Convert a config-file value to the option's type, or raise ``ValueError`` saying why."""
    if value is None:
        return None
    base = _strip_optional(annotation)
    element = tuple_element(base)
    if element is not None:
        if isinstance(value, str):
            return parse_list(value, element)
        if isinstance(value, list | tuple):
            return tuple(_list_element(item, element, index) for index, item in enumerate(value, start=1))
        raise ValueError(f"expected a list of {element.__name__}, got {value!r}")
    if typing.get_origin(base) is typing.Literal:
        choices = typing.get_args(base)
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if base is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is str and isinstance(value, str | int | float):
        return str(value)
    if base is Path and isinstance(value, str):
        return Path(value)
    raise ValueError(f"expected {getattr(base, '__name__', base)}, got {value!r}")


def check_range(option: OptionField | dataclasses.Field, value: Any) -> Any:
    """``value`` if it lies within the field's ``flag(min=, max=)`` bounds (every element of a tuple);
    else ``ValueError`` saying the bound. The one range check for config files, model metadata and flags."""
    metadata = option.field.metadata if isinstance(option, OptionField) else option.metadata
    low, high = metadata.get("min"), metadata.get("max")
    if value is None or (low is None and high is None):
        return value
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if item != item or (low is not None and item < low) or (high is not None and item > high):
            bounds = " and ".join(f"{word} {bound}" for word, bound in (("at least", low), ("at most", high))
                                  if bound is not None)
            raise ValueError(f"must be {bounds}, got {item!r}")
    return value


def check_values(option_class: type | None, values: Mapping[str, Any], where: str) -> None:
    """Range-check the values of ``option_class``'s fields found in ``values``; one ``ValueError`` listing
    every problem, prefixed by ``where`` (a model file, a checkpoint)."""
    if option_class is None:
        return
    problems = []
    for option in option_fields(option_class):
        if option.name in values:
            try:
                check_range(option, values[option.name])
            except ValueError as error:
                problems.append(f"{option.name} {error}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def build(option_class: type | None, values: Mapping[str, Any]) -> Any:
    """Instantiate ``option_class`` from the merged values (its own fields only)."""
    if option_class is None:
        return None
    names = {field.name for field in dataclasses.fields(option_class) if field.init}
    return option_class(**{name: values[name] for name in names if name in values})


def default_options(option_class: type) -> dict[str, Any]:
    """The default of every field of ``option_class`` that has one (what a run from before a field existed
    did), as :func:`to_plain` writes values."""
    defaults = ((option.name, option.default) for option in option_fields(option_class))
    return {name: _plain(value) for name, value in defaults if value is not ...}


def to_plain(options: Any) -> dict[str, Any]:
    """A dataclass as JSON/TOML-friendly values (Paths as strings)."""
    if options is None:
        return {}
    return {key: _plain(value) for key, value in dataclasses.asdict(options).items()}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def dump_toml(values: Mapping[str, Any]) -> str:
    """Write a flat mapping of scalars and tuples as TOML (``None`` values become comments), for saved run configs."""
    lines = []
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key} = (not set)")
        elif isinstance(value, list | tuple):
            lines.append(f"{key} = [{', '.join(_toml_scalar(item) for item in value)}]")
        else:
            lines.append(f"{key} = {_toml_scalar(value)}")
    return "\n".join(lines) + "\n"


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)
