"""The task card: a cheap, import-light description of one task a plugin provides.

A plugin's ``__init__`` module builds ``TaskSpec`` objects while the CLI starts, so nothing here may import
torch or cv2. The heavy side (networks, training step) is named by ``implementation`` as a
``"module:Class"`` string and imported only when a command actually runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

TaskKind = Literal["image-to-image", "sample"]
#: What happens to an input's alpha channel; see :class:`InputSpec`.
AlphaPolicy = Literal["keep", "as-mask", "drop"]
#: What happens to a companion input whose pixel size differs from the image's; see :class:`InputSpec`.
ResizePolicy = Literal["refuse", "nearest"]

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
_INPUT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: Names an input may not take: the command's own parameters (the common options are checked too).
RESERVED_INPUT_NAMES = frozenset({"ctx", "inputs", "config"})


@dataclass(frozen=True)
class InputSpec:
    """One named input of an image-to-image task; the first one of a task is its primary image.

    The primary image comes from the command's positional arguments (files, folders, globs); every other
    input becomes an option ``--NAME FILE|DIR|GLOB`` whose files are paired with the images (see
    ``docs/plugins.md``, "Tasks with several inputs"). All inputs of one item have the same pixel size.

    Attributes:
        name: Lowercase identifier (``mask``): the key in the dict ``Task.predict`` receives, and the flag.
        help: One line for ``--help`` (the flag's help).
        channels: 3 for an RGB tensor (gray files are repeated), 1 for a one-channel tensor such as a mask
            (an RGB file is reduced to Rec. 601 luma; a file painted in its alpha channel over one flat
            colour is its alpha).
        required: Whether every item needs this input. An optional one left off the command line is absent
            from the dict ``predict`` receives.
        alpha: What the input's alpha channel means. ``"keep"``: transparent pixels are filled from their
            visible neighbours before the network sees them and, for the primary image, the alpha is
            re-attached to the output (today's behaviour). ``"drop"``: alpha is ignored and the output is
            opaque. ``"as-mask"`` (primary image only): where no file is given for the task's one-channel
            input, ``1 - alpha`` becomes that input (transparent = 1 = hole), and the output is opaque;
            where a file is given, the alpha is kept as with ``"keep"``.
        resize: A companion of another pixel size than its image: ``"refuse"`` fails that item (the
            default); ``"nearest"`` resizes it to the image's size with nearest-neighbour sampling, which
            keeps a binary mask binary (IOPaint's rule for masks).
    """

    name: str
    help: str = ""
    _: KW_ONLY
    channels: int = 3
    required: bool = True
    alpha: AlphaPolicy = "keep"
    resize: ResizePolicy = "refuse"

    def problems(self) -> list[str]:
        """Every reason this input declaration is unusable, all at once (empty when valid)."""
        found: list[str] = []
        if not isinstance(self.name, str) or not _INPUT_NAME_PATTERN.match(self.name):
            found.append(f"input name {self.name!r} must be a lowercase identifier (letters, digits, '_')")
        if not isinstance(self.help, str):
            found.append(f"input {self.name!r}: help must be a string")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            found.append(f"input {self.name!r}: channels must be 3 (RGB) or 1 (e.g. a mask), got {self.channels!r}")
        if not isinstance(self.required, bool):
            found.append(f"input {self.name!r}: required must be True or False")
        if self.alpha not in ("keep", "as-mask", "drop"):
            found.append(f"input {self.name!r}: alpha must be 'keep', 'as-mask' or 'drop', got {self.alpha!r}")
        if self.resize not in ("refuse", "nearest"):
            found.append(f"input {self.name!r}: resize must be 'refuse' or 'nearest', got {self.resize!r}")
        return found


@dataclass(frozen=True)
class WeightsLayout:
    """A published weights layout a task can import with ``gantool models import`` (torch-free).

    Attributes:
        name: The ``--arch`` value (``esrgan``).
        signature: Tensor names that all appear in such a file: how gantool recognises it unasked.
        converter: ``"package.module:function"``, called as ``function(state_dict, reverse)`` with the
            file's tensors (and ``--reverse``'s, or ``None``); returns a ``gantool.modelimport.Converted``
            that renames them into the networks the task's ``build_inference_networks`` builds.
        takes_reverse: The layout accepts ``--reverse FILE`` (a second generator, CycleGAN's BtoA).
    """

    name: str
    signature: tuple[str, ...]
    converter: str
    takes_reverse: bool = False

    def load_converter(self) -> Any:
        """Import and return the converter function (torch is imported here, not before)."""
        module_name, _, attribute = self.converter.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


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
        scale: Output size / input size for image-to-image tasks (the tiler needs it). Only the default:
            a task whose options decide it overrides ``Task.scale``, and a model file's ``gantool.scale``
            is what inference uses.
        kind: ``"image-to-image"`` (takes images) or ``"sample"`` (generates images from noise with
            ``Task.sample``; its verb, usually ``generate``, takes no input images).
        default_weights: Bundled model name used when ``--model`` is not given, e.g. ``"superres-x4"``.
            It may name fields of ``infer_options`` in braces, ``"superres-x{scale}"``, so that an option
            such as ``--scale 2`` picks another bundled model.
        verb_default: This task's ``default_weights`` answer a bare call of a verb that several tasks with
            default weights share. Without ``--model`` the verb keeps the tasks whose default weights take
            every task flag typed on the command line (``translate --direction BtoA`` rules out a task without
            ``--direction``); when more than one is left, the one marked here runs. At most one task of a verb
            may set it (a second claim leaves the verb out, with a warning naming both); it needs
            ``default_weights``.
        inference_networks: Networks that get EMA, are exported, and are loaded for inference. Only the
            default of ``Task.inference_network_names()``, which a task overrides when its options decide
            them (one generator per pyramid level); the model file records the names it holds.
        inputs: The named inputs of an image-to-image task, primary image first. The default, one RGB
            ``image``, is every single-input task: its ``predict`` receives one tensor. With more than one,
            ``predict`` receives a dict of tensors keyed by input name.
        eval_options: Dataclass of the task's own ``gantool eval NAME`` flags. Setting it (even to a
            dataclass without fields) creates that command, which calls ``Task.evaluate``.
        eval_without_model: ``Task.evaluate`` accepts ``networks=None``: without ``--model``,
            ``gantool eval NAME`` measures only the task's baselines (bicubic for super-resolution)
            instead of loading ``default_weights``.
        train_defaults: This task's defaults for the shared training options (``TrainingOptions``), such as
            ``{"batch_size": 1}`` for a task whose reference recipe (and memory use) needs batch 1. The
            flag's help shows the task's default; ``--config`` and typed flags still win.
        weights_layouts: Published weights layouts this task imports (``gantool models import``): each
            recognises a file by its tensor names and renames it into this task's networks.

    The card is cheap, static and shared by every model of the task; anything that can differ between two
    models of one task (scale, network list, classes) belongs to the ``Task``, which is rebuilt from each
    model file's options.
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
    verb_default: bool = False
    inference_networks: tuple[str, ...] = ("generator",)
    inputs: tuple[InputSpec, ...] = (InputSpec("image"),)
    eval_options: type | None = None
    eval_without_model: bool = False
    train_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    weights_layouts: tuple[WeightsLayout, ...] = ()

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
        if not isinstance(self.verb_default, bool):
            found.append(f"verb_default must be True or False, got {self.verb_default!r}")
        elif self.verb_default and (self.verb is None or not self.default_weights):
            found.append("verb_default needs a verb and default_weights (it picks which default a bare verb runs)")
        if not self.inference_networks or not all(isinstance(n, str) for n in self.inference_networks):
            found.append("inference_networks must be a non-empty tuple of network names")
        found += self._input_problems()
        found += _train_default_problems(self.train_defaults)
        if not isinstance(self.eval_without_model, bool):
            found.append(f"eval_without_model must be True or False, got {self.eval_without_model!r}")
        elif self.eval_without_model and self.eval_options is None:
            found.append("eval_without_model needs eval_options (there is no `gantool eval` command without it)")
        for layout in self.weights_layouts if isinstance(self.weights_layouts, tuple) else [None]:
            if not isinstance(layout, WeightsLayout) or ":" not in layout.converter or not layout.signature:
                found.append(f"weights_layouts must be WeightsLayout cards with a 'module:function' converter and "
                             f"a non-empty signature, got {layout!r}")
        return found

    def _input_problems(self) -> list[str]:
        if not isinstance(self.inputs, tuple) or not self.inputs or not all(
                isinstance(i, InputSpec) for i in self.inputs):
            return [f"inputs must be a non-empty tuple of InputSpec, got {self.inputs!r}"]
        found = [problem for spec in self.inputs for problem in spec.problems()]
        names = [spec.name for spec in self.inputs]
        found += [f"input name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
        primary, companions = self.inputs[0], self.inputs[1:]
        if primary.channels != 3 or not primary.required:
            found.append(f"the first input ({primary.name!r}) is the primary image: it must be required and "
                         "have 3 channels")
        reserved = RESERVED_INPUT_NAMES | _common_option_names()
        found += [f"input name {name!r} is reserved by gantool (a common option or parameter)"
                  for name in names if name in reserved]
        if self.infer_options is not None and dataclasses.is_dataclass(self.infer_options):
            options = {field.name for field in dataclasses.fields(self.infer_options)}
            found += [f"input {spec.name!r} clashes with option {self.infer_options.__name__}.{spec.name}; "
                      "rename one" for spec in companions if spec.name in options]
        found += [f"input {spec.name!r}: alpha 'as-mask' is for the primary image only" for spec in companions
                  if spec.alpha == "as-mask"]
        if primary.alpha == "as-mask":
            masks = [spec.name for spec in companions if spec.channels == 1]
            if len(masks) != 1:
                found.append(f"input {primary.name!r}: alpha 'as-mask' needs exactly one 1-channel input to "
                             f"fill, found {len(masks)}")
        if len(self.inputs) > 1 and self.kind != "image-to-image":
            found.append("only image-to-image tasks take inputs")
        return found

    def mask_input(self) -> InputSpec | None:
        """The one-channel input the primary image's alpha fills (``alpha="as-mask"``), or None."""
        return mask_input(self.inputs)

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


def mask_input(inputs: tuple[InputSpec, ...]) -> InputSpec | None:
    """Of a task's inputs, the one-channel one that the primary image's alpha fills when it has
    ``alpha="as-mask"`` (and no file is given for it), or None."""
    if not inputs or inputs[0].alpha != "as-mask":
        return None
    return next((spec for spec in inputs[1:] if spec.channels == 1), None)


def _train_default_problems(defaults: Any) -> list[str]:
    """Why ``train_defaults`` is unusable: not a mapping, an unknown shared option, a value out of range."""
    from gantool.plugin.common import TrainingOptions  # import here: common imports this module's users
    from gantool.plugin.options import check_range, coerce, option_fields

    if not isinstance(defaults, Mapping):
        return [f"train_defaults must be a mapping of TrainingOptions names to values, got {defaults!r}"]
    known = {option.name: option for option in option_fields(TrainingOptions)}
    found = []
    for name, value in defaults.items():
        if name not in known:
            found.append(f"train_defaults: {name!r} is not a shared training option")
            continue
        try:
            check_range(known[name], coerce(value, known[name].annotation))
        except ValueError as error:
            found.append(f"train_defaults: {name}: {error}")
    return found


def _common_option_names() -> frozenset[str]:
    """Fields of the options every image verb has (``--model``, ``--tile`` ...): an input may not take them."""
    from gantool.plugin.common import InferenceOptions  # import here: common imports this module's users

    return frozenset(field.name for field in dataclasses.fields(InferenceOptions))


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING
