"""The heavy side of a task: the ``Task`` base class that task plugins subclass.

A plugin's cheap ``TaskSpec`` names its ``Task`` subclass by a ``"module:Class"`` string; the class is
imported only when a command runs. torch is imported here only for type checking, so importing this
module (for example to subclass it) stays cheap until the task actually builds something.

What a subclass must override, and what it may:

=============================  =========  ==========================================================
method                         override?  default
=============================  =========  ==========================================================
``build_networks``             must       (none) every network by name, generators and critics
``build_inference_networks``   may        ``build_networks()`` filtered to ``spec.inference_networks``
``build_optimizers``           may        Adam per network; ``AdamOptions`` settings per network role
``network_role``               may        ``"generator"`` if in ``spec.inference_networks``, else critic
``build_dataset``              to train   (none) a map-style dataset of dicts of tensors
``training_step``              to train   (none) the GAN update order through ``TrainStep``
``visualize``                  may        ``[]`` rows of the sample grid
``predict``                    may        ``networks[spec.inference_networks[0]](image)``
``postprocess``                may        identity; runs once on the stitched image, after tiling
``export_metadata``            may        colour space and value range
``state_dict`` / ``load_...``  may        ``{}`` extra state an exact resume needs (an image pool)
=============================  =========  ==========================================================

Rebuilding from metadata: an exported model stores the task's full training options as JSON
(``gantool.train_options``). Inference recreates ``spec.train_options(**known_fields)`` (unknown keys are
ignored, missing ones take their defaults), constructs the task with it and calls
``build_inference_networks()`` before loading the weights. So a network's *architecture* must depend
only on ``self.options`` (never on the data, the device or the environment), and a new option that
changes the architecture needs a default equal to the old behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.optim import Optimizer
    from torch.utils.data import Dataset

    from gantool.engine.step import TrainStep
    from gantool.plugin.options import NetworkRole
    from gantool.plugin.spec import TaskSpec


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

    def __init__(self, spec: TaskSpec, options: Any | None = None) -> None:
        self.spec = spec
        self.options = options

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        """Every network of the task by name, freshly initialised on the CPU (must override).

        Names must include every entry of ``spec.inference_networks``. The engine moves them to the
        device, wraps them (DDP, compile) and checkpoints them; keep them plain ``nn.Module`` objects.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_networks()")

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the networks inference needs (``spec.inference_networks``).

        Override to skip building critics when they are expensive; the default builds everything and
        drops what inference does not use.
        """
        networks = self.build_networks()
        missing = [name for name in self.spec.inference_networks if name not in networks]
        if missing:
            raise KeyError(f"{type(self).__name__}.build_networks() lacks inference networks {missing}; "
                           f"it returned {sorted(networks)}")
        return {name: networks[name] for name in self.spec.inference_networks}

    def network_role(self, name: str) -> NetworkRole:
        """Whether network ``name`` is a ``"generator"`` or a ``"critic"``, for per-role optimizer settings.

        Default: the networks inference uses (``spec.inference_networks``) are generators, every other one
        is a critic. Override when a task trains another kind of network alongside.
        """
        return "generator" if name in self.spec.inference_networks else "critic"

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

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows of the periodic sample grid, each ``(B, 3, H, W)`` in [0, 1] and of the same size.

        Called under ``torch.no_grad()`` with the EMA inference networks in eval mode and a fixed batch,
        so successive grids are comparable. The default shows nothing.
        """
        del batch, networks
        return []

    # --------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """Inference on one batch or tile: ``(B, C, H, W)`` RGB float in [0, 1] to ``(B, C', H*s, W*s)``.

        ``options`` is an instance of ``spec.infer_options`` (or ``None``). Must be fully convolutional
        in the spatial sense so that tiled inference is valid (``s`` is ``spec.scale``).
        """
        del options
        return networks[self.spec.inference_networks[0]](image)

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

    def export_metadata(self) -> dict[str, str]:
        """Extra ``gantool.*`` string metadata for the exported model file (merged last, so it wins).

        Add ``"gantool.architecture"`` with a short human description of the networks.
        """
        return {"gantool.color_space": "rgb", "gantool.value_range": "0,1"}

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
