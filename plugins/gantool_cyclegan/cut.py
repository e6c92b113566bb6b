"""The heavy side of ``cut``: one-sided unpaired translation with PatchNCE (Park et al. 2020).

Networks: ``generator`` (A to B, the ResNet generator of CycleGAN, resize-conv upsampling by default),
``critic`` (PatchGAN on domain B) and ``projector`` (the MLP heads of PatchNCE, trained with the generator).
One iteration:

1. **Generator** (one Adam over generator and projector): ``G([a, b])`` gives ``fake_b`` and, with
   ``--nce-identity``, ``idt_b = G(b)``, plus the encoder features of ``a`` and ``b`` from the same pass.
   One encoder pass over ``[fake_b, idt_b]`` gives the query features. Loss: the adversarial loss
   (LSGAN) of ``fake_b`` through the frozen critic + ``nce_weight`` x PatchNCE(``fake_b`` against ``a``,
   and ``idt_b`` against ``b``, averaged) (:mod:`gantool.lib.nce`).
2. **Critic**: real B against ``fake_b`` (no history pool, as in CUT).

Compared with CycleGAN: one generator forward + one encoder pass instead of six generator passes, and one
critic instead of two. Images are in [0, 1] in batches and at inference, [-1, 1] inside the networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.errors import UsageError
from gantool.lib.losses import AdversarialLoss
from gantool.lib.nce import PatchProjector, patch_nce_loss
from gantool.lib.nets.patchgan import PatchDiscriminator
from gantool.lib.ranges import to_signed, to_unit
from gantool.plugin.options import NetworkRole
from gantool.plugin.task import Task
from gantool_cyclegan.options import CUTTrainOptions
from gantool_cyclegan.task import grouped_adam, unpaired_dataset, unpaired_generator


class CUT(Task):
    """Unpaired translation A to B with one generator. Batches hold ``"A"`` and ``"B"`` crops drawn independently."""

    def __init__(self, spec: Any, options: CUTTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else CUTTrainOptions())
        self.options: CUTTrainOptions
        self.adversarial = AdversarialLoss(self.options.gan_loss)

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        """Generator, critic and the PatchNCE projector (one head per encoder feature layer)."""
        generator = unpaired_generator(self.options)
        return {"generator": generator,
                "critic": PatchDiscriminator.from_options(self.options, 3, norm="instance"),
                "projector": PatchProjector(generator.feature_channels, self.options.nce_dim)}

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """The generator only."""
        return {"generator": unpaired_generator(self.options)}

    def network_role(self, name: str) -> NetworkRole:
        """The projector learns with the generator (its learning rate and optimizer)."""
        return "critic" if name == "critic" else "generator"

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, Optimizer]:
        """``generator`` (generator + projector, one loss) and ``critic``: fused Adam as in ``cyclegan``."""
        return {"generator": grouped_adam(self.options, networks, ("generator", "projector"), "generator"),
                "critic": grouped_adam(self.options, networks, ("critic",), "critic")}

    # ----------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        """Unpaired crops from ``data/trainA`` + ``data/trainB`` (or ``A/`` + ``B/``), as ``cyclegan``."""
        return unpaired_dataset(self.options, data)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Update generator and projector, then the critic (see the module docstring)."""
        o = self.options
        real_a, real_b = to_signed(batch["A"]), to_signed(batch["B"])
        n = real_a.shape[0]
        if o.nce_identity and real_b.shape[0] != n:
            raise UsageError(f"cut: the identity PatchNCE needs as many B as A images per batch, got {n} and "
                             f"{real_b.shape[0]}")
        generator = step.networks["generator"]
        sources = torch.cat([real_a, real_b]) if o.nce_identity else real_a
        with step.autocast():
            outputs, source_features = generator(sources, features=True)
            fake_b = outputs[:n]
            query_features = generator(outputs, encode_only=True)
            nce = patch_nce_loss(query_features, source_features, step.networks["projector"],
                                 count=o.nce_patches, temperature=o.nce_temperature)
        with step.autocast(), step.frozen("critic") as critic:
            adversarial = self.adversarial.generator_via(critic, fake_b, real_b)
            g_loss = o.adversarial_weight * adversarial + o.nce_weight * nce
        step.update("generator", g_loss)
        d_loss, _, _ = self.adversarial.update_critic(step, real_b, fake_b, name="critic")
        return {"g": g_loss.detach(), "adv": adversarial.detach(), "nce": nce.detach(), "d": d_loss.detach()}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: real A, fake B, real B, G(real B) (what the identity PatchNCE keeps close to B)."""
        generator = networks["generator"]
        real_a, real_b = batch["A"].float(), batch["B"].float()
        rows = [real_a, to_unit(generator(to_signed(real_a)).float()), real_b,
                to_unit(generator(to_signed(real_b)).float())]
        return [row.clamp(0, 1) for row in rows]

    # ---------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """``(B, 3, H, W)`` in [0, 1] from domain A to B (any size; tiled like ``cyclegan``)."""
        return to_unit(networks["generator"](to_signed(image))).clamp(0, 1)

    def check_infer_options(self, options: Any | None) -> None:
        """One generator, A to B (options of another task's card may still carry a direction)."""
        if getattr(options, "direction", "AtoB") not in ("AtoB", "auto"):
            raise UsageError("a cut model translates one way only (A to B); train another for B to A")

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval cut``: change, FID and KID of A to B (``cyclegan``'s evaluation, one direction)."""
        from gantool_cyclegan.evaluate import evaluate_domains

        return evaluate_domains(self, networks, data, options, context, directions=("AtoB",))

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range and ``gantool.architecture``."""
        return {**super().export_metadata(), "gantool.architecture": self.options.describe_architecture(),
                "gantool.directions": "AtoB: generator"}
