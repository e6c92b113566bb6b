"""The task card: a cheap, import-light description of one task a plugin provides.

A plugin's ``__init__`` module builds ``TaskSpec`` objects while the CLI starts, so nothing here may import
torch or cv2. The heavy side (networks, training step) is named by ``implementation`` as a
``"module:Class"`` string and imported only when a command actually runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from typing import Any, Literal

TaskKind = Literal["image-to-image", "sample"]

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """Everything the CLI and the registry need to know about a task without importing it.

    Attributes:
        name: Task id, a lowercase noun (``superres``): ``gantool train NAME``, checkpoints, model folders.
        verb: The inference command, a user word (``upscale``). Several tasks may share one verb
            (pix2pix and CycleGAN both ``translate``); the model file then says which task runs it.
            ``None`` for a train-only task.
        summary: One line for ``--help`` and ``plugins list``.
        implementation: ``"package.module:ClassName"`` of the ``gantool.task.Task`` subclass.
        infer_options: Dataclass of the task's own inference flags (fields become ``--flags``).
        train_options: Dataclass of the task's own training flags.
        scale: Output size / input size for image-to-image tasks (the tiler needs it).
        kind: ``"image-to-image"`` (takes images) or ``"sample"`` (generates images from noise).
        default_weights: Bundled model name used when ``--model`` is not given, e.g. ``"superres-x4"``.
            It may name fields of ``infer_options`` in braces, ``"superres-x{scale}"``, so that an option
            such as ``--scale 2`` picks another bundled model.
        inference_networks: Networks that get EMA, are exported, and are loaded for inference.
        eval_options: Dataclass of the task's own ``gantool eval NAME`` flags. Setting it (even to a
            dataclass without fields) creates that command, which calls ``Task.evaluate``.
        eval_without_model: ``Task.evaluate`` accepts ``networks=None``: without ``--model``,
            ``gantool eval NAME`` measures only the task's baselines (bicubic for super-resolution)
            instead of loading ``default_weights``.
    """

    name: str
    verb: str | None
    summary: str
    implementation: str
    infer_options: type | None = None
    train_options: type | None = None
    scale: int = 1
    kind: TaskKind = "image-to-image"
    default_weights: str | None = None
    inference_networks: tuple[str, ...] = ("generator",)
    eval_options: type | None = None
    eval_without_model: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid TaskSpec {self.name!r}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason this card is unusable, all at once (empty when valid)."""
        found: list[str] = []
        if not isinstance(self.name, str) or not _NAME_PATTERN.match(self.name):
            found.append(f"name {self.name!r} must be lowercase letters, digits, '-' or '_'")
        if self.verb is not None and (not isinstance(self.verb, str) or not _NAME_PATTERN.match(self.verb)):
            found.append(f"verb {self.verb!r} must be lowercase letters, digits, '-' or '_'")
        if not isinstance(self.summary, str) or not self.summary.strip():
            found.append("summary must be a non-empty string")
        if not isinstance(self.implementation, str) or ":" not in self.implementation:
            found.append(f"implementation {self.implementation!r} must look like 'package.module:ClassName'")
        for label, options in (("infer_options", self.infer_options), ("train_options", self.train_options),
                               ("eval_options", self.eval_options)):
            if options is not None and not (isinstance(options, type) and dataclasses.is_dataclass(options)):
                found.append(f"{label} must be a dataclass type, got {options!r}")
        if not isinstance(self.scale, int) or self.scale < 1:
            found.append(f"scale must be a positive integer, got {self.scale!r}")
        if self.kind not in ("image-to-image", "sample"):
            found.append(f"kind must be 'image-to-image' or 'sample', got {self.kind!r}")
        if not self.inference_networks or not all(isinstance(n, str) for n in self.inference_networks):
            found.append("inference_networks must be a non-empty tuple of network names")
        if not isinstance(self.eval_without_model, bool):
            found.append(f"eval_without_model must be True or False, got {self.eval_without_model!r}")
        elif self.eval_without_model and self.eval_options is None:
            found.append("eval_without_model needs eval_options (there is no `gantool eval` command without it)")
        return found

    def default_weights_for(self, infer_options: Any | None) -> str | None:
        """The default model name, with ``{field}`` placeholders filled from the inference options."""
        if self.default_weights is None:
            return None
        values = dataclasses.asdict(infer_options) if infer_options is not None else {}
        try:
            return self.default_weights.format(**values)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"task {self.name!r}: default_weights {self.default_weights!r} names an unknown "
                             f"option ({error})") from None

    def load_implementation(self) -> type:
        """Import and return the heavy ``Task`` class. This is where torch gets imported."""
        module_name, _, attribute = self.implementation.partition(":")
        module = importlib.import_module(module_name)
        try:
            return getattr(module, attribute)
        except AttributeError as error:
            raise ImportError(f"module {module_name!r} has no attribute {attribute!r}") from error

    def options_of(self, which: Literal["infer", "train", "eval"]) -> type | None:
        """The task's inference, training or evaluation option dataclass (``None`` when it has none)."""
        return {"infer": self.infer_options, "train": self.train_options, "eval": self.eval_options}[which]

    def option_defaults(self, which: Literal["infer", "train", "eval"]) -> dict[str, Any]:
        """Default values of the task's inference, training or evaluation option dataclass."""
        options = self.options_of(which)
        if options is None:
            return {}
        return {f.name: _field_default(f) for f in dataclasses.fields(options)}


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING
