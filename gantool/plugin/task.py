"""The heavy side of a task: the ``Task`` base class that task plugins subclass.

A plugin's cheap ``TaskSpec`` names its ``Task`` subclass by a ``"module:Class"`` string; the class is
imported only when a command runs. torch is imported here only for type checking, so importing this
module (for example to subclass it) stays cheap until the task actually builds something.

What a subclass must override, and what it may:

=============================  =========  ==========================================================
method                         override?  default
=============================  =========  ==========================================================
``build_networks``             must       (none) every network by name, generators and critics
``build_inference_networks``   may        ``build_networks()`` filtered to ``inference_network_names()``
``inference_network_names``    may        ``spec.inference_networks``; what gets EMA, export and loading
``scale`` (property)           may        ``spec.scale``; output size / input size of *this* model
``build_optimizers``           may        Adam per network; ``AdamOptions`` settings per network role
``network_role``               may        ``"generator"`` if in ``inference_network_names()``, else critic
``settle_options``             may        nothing; options read from the training data (``--classes all``)
``build_dataset``              to train   (none) a map-style dataset of dicts of tensors
``training_step``              to train   (none) the GAN update order through ``TrainStep``
``training_warnings``          may        ``{}``; problems seen in the logged means (a collapsing level)
``visualize``                  may        ``[]`` rows of the sample grid
``predict``                    may        ``networks[inference_network_names()[0]](image)`` (several
                                          inputs: their tensors concatenated along channels, in order)
``check_infer_options``        may        accepts all; refuse what this model file cannot do, in one line
``postprocess``                may        identity; runs once on the stitched image, after tiling
``sample``                     to sample  (none) ``kind="sample"`` tasks: ``(count, C, H, W)`` from noise
``class_names``                may        ``()`` (unconditional); class labels ``--class`` accepts
``export_metadata``            may        colour space and value range
``prepare_for_export``         may        identity; the networks as the exported file stores them
``evaluate``                   to eval    (none) score rows + columns; needed when ``spec.eval_options`` is set
``state_dict`` / ``load_...``  may        ``{}`` extra state an exact resume needs (an image pool)
=============================  =========  ==========================================================

Rebuilding from metadata: an exported model stores the task's full training options as JSON
(``gantool.train_options``). Inference recreates ``spec.train_options(**known_fields)`` (unknown keys are
ignored, missing ones take their defaults), constructs the task with it and calls
``build_inference_networks()`` before loading the weights. So a network's *architecture* must depend
only on ``self.options`` (never on the data, the device or the environment), and a new option that
changes the architecture needs a default equal to the old behaviour.

Per-model facts come from the model, not the card: ``spec.scale`` and ``spec.inference_networks`` are only
defaults. A task whose scale or network list depends on its options (superres ``--scale``, one generator per
pyramid level) overrides :attr:`Task.scale` / :meth:`Task.inference_network_names`; export records them in
the model file (``gantool.scale``, ``gantool.inference_networks``) and loading rebuilds exactly those.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn
    from torch.optim import Optimizer
    from torch.utils.data import Dataset

    from gantool.engine.step import TrainStep
    from gantool.plugin.evaluation import EvalContext, EvalResult
    from gantool.plugin.options import NetworkRole
    from gantool.plugin.spec import TaskSpec

from gantool.plugin.requests import SampleRequest  # noqa: F401 - re-exported: tasks import it from here


class Task:
    """Base class of every task's heavy side; the engine only ever talks to a task through these methods.

    The engine owns devices, precision, DDP, EMA, checkpoints and export; the task owns its networks,
    its data and the order of its updates. Nothing is looked up by string convention: a task composes
    its losses as attributes and names networks in the dicts it returns.

    Args:
        spec: The task's card (name, scale, inference networks ...).
        options: An instance of ``spec.train_options`` (or ``None`` when the task has none). At inference
            it is rebuilt from the model file's metadata, so it carries the architecture choices.
    """

    #: Inference on a gray (1-channel) input: ``True`` turns a 3-channel result back into gray (Rec. 601
    #: luma), so gray stays gray; a task whose point is to add colour (colourisation) sets ``False`` to keep
    #: the RGB result. The engine converts gray inputs to RGB before :meth:`predict` either way.
    output_gray_for_gray_input: bool = True

    #: Whether inference may split a large image into tiles for ``predict``. Tasks whose networks use
    #: whole-image statistics (instance norm in a U-Net) or work at a fixed render size set it to False,
    #: and ``predict`` then always receives the whole image.
    tileable: bool = True

    #: Whether :meth:`sample` understands ``SampleRequest.truncation``. ``gantool generate --truncation`` on a
    #: task that leaves it False is a usage error, never silently ignored. A property works too, when
    #: support depends on the options.
    supports_truncation: bool = False

    def __init__(self, spec: TaskSpec, options: Any | None = None) -> None:
        self.spec = spec
        self.options = options

    # -------------------------------------------------------------------------------- per-model facts

    @property
    def scale(self) -> int:
        """Output size / input size of this model (default ``spec.scale``, the card's default).

        Override when an option decides it (superres ``--scale``): export writes it as ``gantool.scale``
        and inference tiles with the file's value.
        """
        return getattr(self, "_scale", self.spec.scale)

    @scale.setter
    def scale(self, value: int) -> None:  # tasks written before this property assigned self.scale
        self._scale = int(value)

    def inference_network_names(self) -> tuple[str, ...]:
        """The networks that get EMA, are exported and are loaded for inference (default
        ``spec.inference_networks``, the card's default).

        Override when the options decide them (one generator per pyramid level of a LapGAN). Must depend
        only on ``self.options``: loading rebuilds the task from the model file's options and expects
        exactly the names stored there (``gantool.inference_networks``).
        """
        return tuple(self.spec.inference_networks)

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        """Every network of the task by name, freshly initialised on the CPU (must override).

        Names must include every entry of :meth:`inference_network_names`. The engine moves them to the
        device, wraps them (DDP, compile) and checkpoints them; keep them plain ``nn.Module`` objects.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_networks()")

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the networks inference needs (:meth:`inference_network_names`).

        Override to skip building critics when they are expensive; the default builds everything and
        drops what inference does not use.
        """
        networks = self.build_networks()
        names = self.inference_network_names()
        missing = [name for name in names if name not in networks]
        if missing:
            raise KeyError(f"{type(self).__name__}.build_networks() lacks inference networks {missing}; "
                           f"it returned {sorted(networks)}")
        return {name: networks[name] for name in names}

    def network_role(self, name: str) -> NetworkRole:
        """Whether network ``name`` is a ``"generator"`` or a ``"critic"``, for per-role optimizer settings.

        Default: the networks inference uses (:meth:`inference_network_names`) are generators, every other
        one is a critic. Override when a task trains another kind of network alongside.
        """
        return "generator" if name in self.inference_network_names() else "critic"

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, Optimizer]:
        """One Adam per trainable network, keyed like ``networks``; networks without trainable parameters get none.

        Options that implement :class:`gantool.plugin.options.OptimizerOptions` (any composing
        :class:`gantool.lib.options.AdamOptions`) choose ``(lr, betas)`` per :meth:`network_role`, so
        critics get ``--lr-critic``. Older options are read as before: ``options.lr`` (2e-4 when absent),
        betas ``(options.beta1 or 0.5, options.beta2 or 0.999)``, the same for every network.
        """
        import torch

        from gantool.plugin.options import OptimizerOptions

        optimizers: dict[str, Optimizer] = {}
        for name, network in networks.items():
            parameters = [p for p in network.parameters() if p.requires_grad]
            if not parameters:
                continue
            if isinstance(self.options, OptimizerOptions):
                lr, betas = self.options.adam_settings(self.network_role(name))
            else:
                lr = float(getattr(self.options, "lr", 2e-4))
                betas = (float(getattr(self.options, "beta1", 0.5)), float(getattr(self.options, "beta2", 0.999)))
            optimizers[name] = torch.optim.Adam(parameters, lr=lr, betas=betas)
        return optimizers

    # ---------------------------------------------------------------------------------------- training

    def settle_options(self, data: Path) -> None:
        """Called once by the trainer with ``--data`` before any network is built: replace ``self.options``
        with values read from the data (``--classes all`` becomes the sub-folders' names). The run records,
        a resume compares and the model stores the settled values, so inference never needs the data."""
        del data

    def build_dataset(self, data: Path) -> Dataset:
        """A map-style dataset whose items are dicts of tensors (must override to train).

        Random augmentation may use ``torch``, ``random`` or ``numpy`` global RNGs freely: the engine
        seeds them per sample from (seed, epoch, position), so the data is identical across
        ``--num-workers`` settings and after a resume.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_dataset() to be trained")

    def training_step(self, batch: dict[str, Tensor], step: TrainStep) -> dict[str, Tensor]:
        """One iteration: forward under ``step.autocast()``, then ``step.update(name, loss)`` per network.

        Keep one forward per backward for every DDP-wrapped network (concatenate real and fake batches
        for a critic); use ``step.frozen(name)`` for a network that only passes gradients through.
        Returns scalar losses to log (detached or not); a non-finite one stops training.

        Example::

            def training_step(self, batch, step):
                with step.autocast():
                    fake = step.networks["generator"](batch["input"])
                    scores = step.networks["critic"](torch.cat([batch["target"], fake.detach()]))
                    d_loss = self.adversarial.critic(*scores.chunk(2))
                step.update("critic", d_loss)
                with step.autocast(), step.frozen("critic") as critic:
                    g_loss = self.adversarial.generator(critic(fake)) + l1(fake, batch["target"])
                step.update("generator", g_loss)
                return {"d": d_loss, "g": g_loss}
        """
        raise NotImplementedError(f"{type(self).__name__} must implement training_step() to be trained")

    def training_warnings(self, logged: Mapping[str, float], step: int) -> Mapping[str, str]:
        """Problems visible in the logged values, e.g. a generator whose samples stopped varying (default: none).

        ``logged``: the means of :meth:`training_step`'s values since the last log step; ``step``: steps done
        (fresh networks may look unhealthy for a while). Return ``{key: one line}``: the trainer prints a
        line whose key was not reported at the previous log step and records all in ``metrics.jsonl``.
        """
        del logged, step
        return {}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows of the periodic sample grid, each ``(B, 3, H, W)`` in [0, 1] and of the same size.

        Called under ``torch.no_grad()`` with every network in eval mode (the EMA shadows of the inference
        networks, the live others) and a fixed batch, so successive grids are comparable. The default shows
        nothing.
        """
        del batch, networks
        return []

    # --------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Any, options: Any | None = None) -> Tensor:
        """Inference on one batch or tile: ``(B, 3, H, W)`` RGB float in [0, 1] to ``(B, C', H*s, W*s)``.

        ``image`` is typed ``Any`` so that a single-input task may annotate it ``Tensor`` and a task with
        several inputs ``dict[str, Tensor]`` (see below) without breaking the override rules.

        ``options`` is an instance of ``spec.infer_options`` (or ``None``). Must be fully convolutional
        in the spatial sense so that tiled inference is valid (``s`` is :attr:`scale`).

        **Several inputs.** A task whose card declares more than one input (``TaskSpec.inputs``, e.g.
        ``image`` + ``mask``) receives ``image`` as a ``dict[str, Tensor]`` keyed by input name instead:
        each ``(B, C, H, W)`` float in [0, 1] with ``C`` from its :class:`~gantool.plugin.spec.InputSpec`
        (3: RGB, 1: one channel, a mask's holes are 1), all of the same ``H, W`` and, when tiled, the same
        window of the image. An optional input not given is absent from the dict. The default
        implementation concatenates the inputs along channels, in declared order, and runs the first
        inference network on that.
        """
        del options
        network = networks[self.inference_network_names()[0]]
        if isinstance(image, Mapping):
            import torch

            return network(torch.cat([image[item.name] for item in self.spec.inputs if item.name in image], dim=1))
        return network(image)

    def check_infer_options(self, options: Any | None) -> None:
        """Raise :class:`~gantool.errors.UsageError` when *this model* cannot do what ``options`` ask.

        The engine calls it once after loading and before reading any image, so a request the file cannot
        serve (a direction whose generator it does not store) is one line, not one failure per image; the
        engine prefixes the model's path. Default: every option value is accepted.
        """
        del options

    def postprocess(self, output: Tensor, source_size: tuple[int, int], options: Any | None = None) -> Tensor:
        """Whole-image step of inference: runs once on the stitched full image, after tiling (default: identity).

        :meth:`predict` sees one tile at a time and must grow it by exactly ``s``, so anything that needs the
        whole picture or changes the output size (a final resize such as ``--outscale``, a global colour
        correction) belongs here instead.

        Args:
            output: The stitched ``(B, C', H*s, W*s)`` float32 result of :meth:`predict`, on the CPU.
            source_size: ``(H, W)`` of the input image, before any upscaling.
            options: As for :meth:`predict`.

        Returns:
            ``(B, C', H', W')`` in [0, 1] of any size; the engine resizes alpha to match it. Return
            ``output`` itself when there is nothing to do (avoid copies of the full image).
        """
        del source_size, options
        return output

    # -------------------------------------------------------------------------------------- generation

    def sample(self, networks: dict[str, nn.Module], count: int, generator: torch.Generator,
               options: SampleRequest) -> Tensor:
        """Generate ``count`` images from noise: what ``gantool generate`` runs for ``kind="sample"`` tasks.

        Called under ``torch.inference_mode()`` and the runtime's autocast, with the loaded inference
        networks in eval mode. Draw *every* random number from ``generator`` (it lives on
        ``generator.device``, so pass ``device=generator.device``), never from the global RNG: the engine
        seeds one generator per fixed-size chunk from ``(--seed, chunk)``, which makes image ``i`` of a seed
        the same whatever ``-n`` is. ``count`` is that chunk size, not ``-n``.

        Args:
            networks: The inference networks by name (:meth:`inference_network_names`).
            count: How many images to return.
            generator: The only source of randomness.
            options: The user's class label, truncation and task flags (:class:`SampleRequest`).

        Returns:
            ``(count, C, H, W)`` float in [0, 1], ``C`` 3 (RGB) or 1 (gray), on any device.

        Example::

            def sample(self, networks, count, generator, options):
                noise = torch.randn(count, self.options.latent, generator=generator, device=generator.device)
                return networks["generator"](noise).sigmoid()
        """
        del networks, count, generator, options
        raise NotImplementedError(f"{type(self).__name__} must implement sample(networks, count, generator, "
                                  f"options) to generate images (task {self.spec.name!r} is of kind "
                                  f"{self.spec.kind!r})")

    def class_names(self) -> tuple[str, ...]:
        """Class labels of a class-conditional generator, in label-index order (default ``()``: unconditional).

        ``--class`` accepts one of these names or its index and reaches :meth:`sample` as
        ``options.label``. Derive them from ``self.options`` (saved in the model file), so each model
        lists its own classes.
        """
        return ()

    #: What a caller of this task's ONNX graph must do around it (written into the ``.onnx`` file's metadata).
    onnx_outside_graph: tuple[str, ...] = ("gray/alpha handling", "tiling", "Task.postprocess")

    def onnx_predict(self, networks: dict[str, nn.Module], image: Any, options: Any | None = None) -> Tensor:
        """What ``gantool export --format onnx`` traces into the graph (default: :meth:`predict` itself).

        ``image`` as for :meth:`predict` (a tensor, or a dict keyed by input name for several inputs),
        batch 1 and any size. Override when ``predict`` does work the exporter cannot trace (OpenCV calls,
        loops over found regions): return the traceable core and say in :attr:`onnx_outside_graph` what
        the graph's callers must do around it.
        """
        return self.predict(networks, image, options)

    def prepare_for_export(self, networks: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """The inference networks as the exported model file should store them (default: unchanged).

        ``export_model`` calls this just before saving. Return *copies* when you change them: the networks
        given may be the EMA networks that training keeps using. Typical use: fold spectral norm into plain
        weights (:func:`gantool.lib.nets.layers.fold_spectral_norm`), so that ``build_inference_networks``
        builds plain layers and the file loads without the training-time parametrization.
        """
        return networks

    def export_metadata(self) -> dict[str, str]:
        """Extra ``gantool.*`` string metadata for the exported model file (merged last, so it wins).

        Add ``"gantool.architecture"`` with a short human description of the networks.
        """
        return {"gantool.color_space": "rgb", "gantool.value_range": "0,1"}

    # -------------------------------------------------------------------------------------- evaluation

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """Score the networks on an evaluation folder, for ``gantool eval NAME`` (must override to be evaluated).

        The engine rebuilds the task from the model file (so ``self.options`` holds the model's training
        options), loads the networks on ``context.device`` in eval mode and calls this under
        ``torch.no_grad()``. Return the scores; the CLI prints them as a table or as JSON.

        Args:
            networks: ``spec.inference_networks`` by name, or ``None`` when ``spec.eval_without_model`` is
                set and no ``--model`` was given: then measure the baselines only, and ``self.options``
                holds the default training options.
            data: The folder given as ``--data`` (a dataset name already resolved to its folder); its layout
                is the task's to define and check (raise ``InputError`` naming what is missing).
            options: An instance of ``spec.eval_options``.
            context: The device, and the model file for messages.

        Returns:
            An :class:`~gantool.plugin.evaluation.EvalResult`: rows (dataclasses or dicts; end with
            ``gantool.lib.metrics.mean_row(rows)`` for a mean row) and the declared columns.

        Example::

            def evaluate(self, networks, data, options, context):
                rows = []
                for path in list_images(data):
                    target = load_image(path)[None]
                    output = to_8bit(self.predict(networks, degrade(target).to(context.device)).cpu())
                    rows.append(Row(image=path.stem, psnr=float(psnr(output, target))))
                return EvalResult(rows=[*rows, mean_row(rows)], columns=[EvalColumn(name="psnr", header="PSNR")])
        """
        del networks, data, options, context
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate() to be evaluated")

    # ------------------------------------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        """Extra task state that an exact resume must restore (for example CycleGAN's image pool).

        Values must load with ``torch.load(weights_only=True)``: tensors, numbers, strings, and lists,
        tuples and dicts of those. Tensors come back on the training device. Under DDP every rank's
        state is saved and restored separately.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        del state
