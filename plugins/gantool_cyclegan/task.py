"""The heavy side of ``cyclegan``: two generators, two critics, image pools and the joint training step.

One iteration, both directions together (the order of the reference implementation):

1. **Generators** (one Adam over both): ``fake_b = G_AB(a)``, ``fake_a = G_BA(b)``, cycles
   ``rec_a = G_BA(fake_b)``, ``rec_b = G_AB(fake_a)``, identities ``G_AB(b)``, ``G_BA(a)``. Loss: the
   adversarial loss (LSGAN by default) through the frozen critics + ``cycle_weight * L1(cycles)`` +
   ``cycle_weight * identity_weight * L1(identities)``.
   Inputs that do not depend on each other share one forward: ``G_BA([b, a])`` gives ``fake_a`` and the
   identity of ``a``; ``G_AB([a, b, fake_a])`` gives ``fake_b``, the identity of ``b`` and ``rec_b``; only
   ``rec_a = G_BA(fake_b)`` needs a second call. Instance norm is per sample, so batching changes nothing.
2. **Critics** (one Adam over both): each sees its real images and a draw from its :class:`ImagePool` of
   past fakes, concatenated in one forward (one forward per backward under DDP).

Images are in [0, 1] in batches and at inference, and mapped to the networks' [-1, 1] inside.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.errors import UsageError
from gantool.lib.losses import AdversarialLoss
from gantool.lib.nets.patchgan import PatchDiscriminator
from gantool.lib.nets.resnet import ResnetGenerator
from gantool.lib.pool import ImagePool
from gantool.lib.ranges import to_signed, to_unit
from gantool.plugin.options import NetworkRole
from gantool.plugin.task import Task
from gantool_cyclegan.options import CycleGANTrainOptions, Direction, UnpairedTrainOptions

GENERATORS = ("generator_ab", "generator_ba")
GENERATOR_OF = {"AtoB": "generator_ab", "BtoA": "generator_ba"}
CRITICS = ("critic_a", "critic_b")


def unpaired_generator(options: UnpairedTrainOptions) -> ResnetGenerator:
    """The ResNet generator the options describe (instance norm, as in CycleGAN and CUT)."""
    o = options
    return ResnetGenerator(3, 3, width=o.width, blocks=o.blocks, norm="instance", upsample=o.upsample)


def unpaired_dataset(options: UnpairedTrainOptions, data: Path) -> Dataset:
    """Unpaired crops from ``data/trainA`` + ``data/trainB`` (or ``A/`` + ``B/``), resized, cropped, flipped."""
    from gantool.lib.data import UnpairedImages

    o = options
    return UnpairedImages.from_root(data, split="train", load_size=o.load_size, crop=o.crop, flip=o.flip)


def grouped_adam(options: UnpairedTrainOptions, networks: dict[str, nn.Module], names: tuple[str, ...],
                 role: NetworkRole) -> Optimizer:
    """One Adam over the parameters of ``networks[names]`` with ``role``'s settings; fused on CPU and CUDA."""
    parameters = list(itertools.chain.from_iterable(networks[name].parameters() for name in names))
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in parameters)
    lr, betas = options.adam_settings(role)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=fused or None)


class CycleGAN(Task):
    """Unpaired translation A <-> B. Networks: ``generator_ab``, ``generator_ba``, ``critic_a``, ``critic_b``.

    ``critic_a`` judges domain A (real A against ``G_BA``'s fakes), ``critic_b`` domain B. Batches hold
    ``"A"`` and ``"B"`` crops drawn independently (:class:`gantool.data.UnpairedImages`).
    """

    def __init__(self, spec: Any, options: CycleGANTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else CycleGANTrainOptions())
        self.options: CycleGANTrainOptions
        self.adversarial = AdversarialLoss(self.options.gan_loss)
        self.pools = {"A": ImagePool(self.options.pool_size), "B": ImagePool(self.options.pool_size)}

    # ----------------------------------------------------------------------------------------- networks

    def _generator(self) -> nn.Module:
        return unpaired_generator(self.options)

    def _critic(self) -> nn.Module:
        return PatchDiscriminator.from_options(self.options, 3, norm="instance")

    def build_networks(self) -> dict[str, nn.Module]:
        """Both generators and both critics, freshly initialised (N(0, 0.02) as in the paper)."""
        return {"generator_ab": self._generator(), "generator_ba": self._generator(),
                "critic_a": self._critic(), "critic_b": self._critic()}

    def inference_network_names(self) -> tuple[str, ...]:
        """The kept generators (``--keep``: both by default); what EMA, export and loading cover."""
        return tuple(GENERATOR_OF[direction] for direction in self.options.directions())

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """The kept generators only: inference never needs the critics."""
        return {name: self._generator() for name in self.inference_network_names()}

    def network_role(self, name: str) -> NetworkRole:
        """Both generators are generators, kept or not."""
        return "generator" if name in GENERATORS else "critic"

    def build_optimizers(self, networks: dict[str, nn.Module]) -> dict[str, Optimizer]:
        """``generators`` (both G, one loss) and ``critics`` (both D, one loss): Adam with ``--lr`` and
        ``--lr-critic`` (default: ``--lr``), betas ``(--beta1, --beta2)``.

        Optimizer names need not be network names; one optimizer per joint loss means one backward each.
        Adam is the fused implementation on CPU and CUDA: one kernel per parameter instead of about ten,
        which took the optimizer steps from 68 to 25 ms per iteration on the 2-core CPU and, more
        importantly there, avoids hundreds of small multi-threaded ops that stall when the cores are shared.
        """
        return {"generators": grouped_adam(self.options, networks, GENERATORS, "generator"),
                "critics": grouped_adam(self.options, networks, CRITICS, "critic")}

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        """Unpaired crops from ``data/trainA`` + ``data/trainB`` (or ``A/`` + ``B/``)."""
        return unpaired_dataset(self.options, data)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Update both generators, then both critics (see the module docstring)."""
        o = self.options
        real_a, real_b = to_signed(batch["A"]), to_signed(batch["B"])
        n, m = real_a.shape[0], real_b.shape[0]
        g_ab, g_ba = step.networks["generator_ab"], step.networks["generator_ba"]
        identity = o.identity_weight > 0

        with step.autocast():
            out_ba = g_ba(torch.cat([real_b, real_a]) if identity else real_b)
            fake_a = out_ba[:m]
            out_ab = g_ab(torch.cat([real_a, real_b, fake_a]) if identity else torch.cat([real_a, fake_a]))
            fake_b, rec_b = out_ab[:n], out_ab[-m:]
            rec_a = g_ba(fake_b)
            cycle = F.l1_loss(rec_a.float(), real_a.float()) + F.l1_loss(rec_b.float(), real_b.float())
            if identity:
                same_a, same_b = out_ba[m:], out_ab[n:n + m]
                idt = F.l1_loss(same_b.float(), real_b.float()) + F.l1_loss(same_a.float(), real_a.float())
            else:
                idt = real_a.new_zeros((), dtype=torch.float32)
        with step.autocast(), step.frozen("critic_a") as critic_a, step.frozen("critic_b") as critic_b:
            adv_ab = self.adversarial.generator_via(critic_b, fake_b, real_b)
            adv_ba = self.adversarial.generator_via(critic_a, fake_a, real_a)
            g_loss = o.adversarial_weight * (adv_ab + adv_ba) + o.cycle_weight * (cycle + o.identity_weight * idt)
        step.update("generators", g_loss)

        pooled_a, pooled_b = self.pools["A"].query(fake_a), self.pools["B"].query(fake_b)
        with step.autocast():
            real_score, fake_score = step.networks["critic_a"](torch.cat([real_a, pooled_a])).split([n, m])
            d_a = self.adversarial.critic(real_score, fake_score)
            real_score, fake_score = step.networks["critic_b"](torch.cat([real_b, pooled_b])).split([m, n])
            d_b = self.adversarial.critic(real_score, fake_score)
            d_loss = d_a + d_b
        step.update("critics", d_loss)
        return {"g": g_loss.detach(), "adv_ab": adv_ab.detach(), "adv_ba": adv_ba.detach(),
                "cycle": cycle.detach(), "identity": idt.detach(), "d_a": d_a.detach(), "d_b": d_b.detach()}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: real A, fake B, reconstructed A, real B, fake A, reconstructed B (all in [0, 1])."""
        g_ab, g_ba = networks["generator_ab"], networks["generator_ba"]
        real_a, real_b = batch["A"].float(), batch["B"].float()
        fake_b, fake_a = g_ab(to_signed(real_a)).float(), g_ba(to_signed(real_b)).float()
        rec_a, rec_b = g_ba(fake_b).float(), g_ab(fake_a).float()
        rows = [real_a, to_unit(fake_b), to_unit(rec_a), real_b, to_unit(fake_a), to_unit(rec_b)]
        return [row.clamp(0, 1) for row in rows]

    # ------------------------------------------------------------------------------------------- resume

    def state_dict(self) -> dict[str, Any]:
        """The two image pools (the stored fakes themselves), so a resumed run draws the same images."""
        return {"pool_a": self.pools["A"].state_dict(), "pool_b": self.pools["B"].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, domain in (("pool_a", "A"), ("pool_b", "B")):
            if key in state:
                self.pools[domain].load_state_dict(state[key])

    # --------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """``(B, 3, H, W)`` in [0, 1] through ``generator_ab`` (``--direction AtoB``) or ``generator_ba``.

        Any size works (the generator pads to a multiple of 4 and crops back). Instance norm normalises
        with the statistics of what it is given, so a tiled image is normalised per tile; tiles of a few
        hundred pixels with the engine's feathered overlap hide this well on natural images.
        """
        return to_unit(networks[GENERATOR_OF[self.direction(options)]](to_signed(image))).clamp(0, 1)

    def direction(self, options: Any | None) -> Direction:
        """The direction asked for; ``auto`` (or no options): AtoB, or the one direction this model stores."""
        asked = getattr(options, "direction", "auto")
        if asked in ("AtoB", "BtoA"):
            return cast(Direction, asked)
        return "AtoB" if "AtoB" in self.options.directions() else self.options.directions()[0]

    def check_infer_options(self, options: Any | None) -> None:
        """A model exported with ``--keep AtoB|BtoA`` runs that direction only."""
        direction = self.direction(options)
        if direction not in self.options.directions():
            kept = self.options.keep
            raise UsageError(f"it stores only the {kept} generator (exported with --keep {kept}), so it cannot "
                             f"translate {direction}; ask for direction {kept} or use another model")

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval cyclegan``: cycle PSNR, change, FID and KID in both directions (see :mod:`.evaluate`)."""
        from gantool_cyclegan.evaluate import evaluate_domains

        return evaluate_domains(self, networks, data, options, context, directions=self.options.directions())

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range and ``gantool.architecture``."""
        return {**super().export_metadata(), "gantool.architecture": self.options.describe_architecture(),
                "gantool.directions": ", ".join(f"{d}: {GENERATOR_OF[d]}" for d in self.options.directions())}
