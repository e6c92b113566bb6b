"""The heavy side of ``dcgan`` and ``lapgan``: networks, the training step, sampling and export.

A LapGAN model is a pyramid of generators at sides ``(16, 32, 64)`` (say): ``generator16`` is a DCGAN
generator from noise (+ label); ``generator32`` takes ``pyr_up`` of the 16 px image plus a noise plane (+
label planes) and returns the 32 px band, which is added to it; and so on. Each level has its own critic
(``critic16``, ...); the finer critics see the upsampled coarse image next to the full one (6 channels), so
they judge the detail given its condition. Training feeds every level the *real* Gaussian pyramid of the
batch, so the levels are independent: they all train in one step, each on its own loss.

``dcgan`` is the one-level case with the names ``generator`` and ``critic``. Images are [0, 1] in batches
and outputs, [-1, 1] inside the networks (``gantool.lib.ranges``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult, SampleRequest
from gantool.errors import InputError, UsageError
from gantool.lib.latent import loop_path
from gantool.lib.losses import AdversarialLoss
from gantool.lib.nets.dcgan import DCGANCritic, DCGANGenerator, LevelGenerator
from gantool.lib.nets.layers import folded_state_dict
from gantool.lib.pyramid import gaussian_pyramid, pyr_up
from gantool.lib.ranges import to_signed, to_unit
from gantool.plugin.task import Task
from gantool_lapgan.options import ALL_CLASSES, DCGANTrainOptions, LapGANTrainOptions

#: Sample spread over real spread (``spread{side}``) below which training warns: collapsed runs of the research
#: note scored 0.17-0.44 of the real value, healthy ones 0.9-1.1.
COLLAPSE_SPREAD = 0.8

#: Steps before that warning: fresh generators start with little spread (0.25-0.75 of the real images' over
#: the first 200-300 steps of the 32 px face runs) and grow out of it.
COLLAPSE_WARMUP = 1000

#: How many times ``--truncation`` redraws out-of-range noise values before clamping the rest.
_REDRAWS = 8


def truncated_noise(count: int, latent: int, generator: torch.Generator, truncation: float | None) -> Tensor:
    """Standard normal noise; with ``truncation`` ``t``, values beyond ``2 t`` are redrawn (BigGAN's trick)."""
    noise = torch.randn(count, latent, generator=generator, device=generator.device)
    if truncation is None:
        return noise
    limit = 2.0 * truncation
    for _ in range(_REDRAWS):
        outside = noise.abs() > limit
        if not outside.any():
            break
        noise = torch.where(outside, torch.randn(noise.shape, generator=generator, device=noise.device), noise)
    return noise.clamp(-limit, limit)


class DCGAN(Task):
    """One DCGAN generator (``generator``) and critic (``critic``) at ``--size``."""

    tileable = False  # generation draws whole images; attention (if any) is global
    supports_truncation = True

    def __init__(self, spec: Any, options: DCGANTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else spec.train_options())
        self.options: DCGANTrainOptions
        self.adversarial = AdversarialLoss(self.options.gan_loss)

    # ---------------------------------------------------------------------------------------- structure

    def sides(self) -> tuple[int, ...]:
        """Sides of the levels, coarsest first (one level here)."""
        return (self.options.size,)

    def trained_sides(self) -> tuple[int, ...]:
        """The levels this run trains (all here)."""
        return self.sides()

    def generator_name(self, side: int) -> str:
        del side
        return "generator"

    def critic_name(self, side: int) -> str:
        del side
        return "critic"

    def inference_network_names(self) -> tuple[str, ...]:
        return tuple(self.generator_name(side) for side in self.sides())

    def class_names(self) -> tuple[str, ...]:
        return tuple(self.options.classes)

    def _generator(self, side: int, spectral_norm: bool) -> nn.Module:
        o = self.options
        if side == self.sides()[0]:
            return DCGANGenerator(o.latent, side, width=o.width, classes=len(o.classes), attention=o.attention,
                                  spectral_norm=spectral_norm)
        assert isinstance(o, LapGANTrainOptions)
        return LevelGenerator(side, width=o.level_width, classes=len(o.classes), attention=o.attention,
                              spectral_norm=spectral_norm)

    def _critic(self, side: int) -> nn.Module:
        o = self.options
        base = side == self.sides()[0]
        width = o.width if base else getattr(o, "level_width", o.width)
        return DCGANCritic(side, in_channels=3 if base else 6, width=width, classes=len(o.classes),
                           attention=o.attention, spectral_norm=o.spectral_norm)

    def settle_options(self, data: Path) -> None:
        """``--classes all``: the sorted names of ``data``'s sub-folders of images, now, so the model stores them."""
        if self.options.classes != (ALL_CLASSES,):
            return
        from gantool.lib.labelled import class_folders

        folders = class_folders(data) if data.is_dir() else []
        if not folders:
            raise InputError(f"'{data}' has no class sub-folders of images (needed for --classes {ALL_CLASSES}: "
                             "DATA/NAME/*.png)")
        self.options = dataclasses.replace(self.options, classes=tuple(folder.name for folder in folders))

    def build_networks(self) -> dict[str, nn.Module]:
        """A generator per level and a critic per trained level (spectral norm where the options ask for it)."""
        if self.options.classes == (ALL_CLASSES,):
            raise UsageError(f"--classes {ALL_CLASSES} is settled from the training data: call settle_options(DATA) "
                             "first")
        networks = {self.generator_name(s): self._generator(s, self.options.generator_spectral_norm)
                    for s in self.sides()}
        return {**networks, **{self.critic_name(s): self._critic(s) for s in self.trained_sides()}}

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """The generators with plain weights: exported files hold spectral norm folded (:meth:`prepare_for_export`)."""
        return {self.generator_name(s): self._generator(s, False) for s in self.sides()}

    def prepare_for_export(self, networks: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """New plain generators holding the given ones' weights with spectral norm folded in (those keep training)."""
        plain = self.build_inference_networks()
        for name, network in networks.items():
            plain[name].load_state_dict(folded_state_dict(network))
            plain[name].to(next(network.parameters()).device).eval()
        return plain

    # ----------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        """Square ``--size`` images of ``data`` (with ``--classes``, those sub-folders, labelled in that order)."""
        from gantool.lib.labelled import LabelledImages

        return LabelledImages(data, self.options.size, classes=self.options.classes, flip=self.options.flip)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Every trained level on the real pyramid: critic update, then generator update through the frozen critic.

        Logs ``d{side}``, ``g{side}`` and ``spread{side}`` (sample spread over real spread, a collapse guard).
        """
        sides = self.sides()
        real_pyramid = gaussian_pyramid(to_signed(batch["image"]), len(sides))[::-1]  # coarsest first
        labels = batch["label"] if self.options.classes else None
        losses: dict[str, Tensor] = {}
        for level, side in enumerate(sides):
            if side not in self.trained_sides():
                continue
            real = real_pyramid[level]
            with step.autocast():
                condition = pyr_up(real_pyramid[level - 1]) if level else None
                fake = self._draw(step.networks, side, len(real), labels, condition, real.device)
                scores = self._judge(step.networks[self.critic_name(side)], condition, labels,
                                     torch.cat([real, fake.detach()]))
                d_loss = self.adversarial.critic(*scores.split(len(real)))
            step.update(self.critic_name(side), d_loss)
            with step.autocast(), step.frozen(self.critic_name(side)) as critic:
                judge = functools.partial(self._judge, critic, condition, labels)
                g_loss = self.options.adversarial_weight * self.adversarial.generator_via(judge, fake, real)
            step.update(self.generator_name(side), g_loss)
            losses[f"d{side}"], losses[f"g{side}"] = d_loss.detach(), g_loss.detach()
            losses[f"spread{side}"] = _spread(fake.detach()) / _spread(real).clamp_min(1e-8)
        return losses

    def training_warnings(self, logged: Mapping[str, float], step: int) -> dict[str, str]:
        """A level whose samples vary less than :data:`COLLAPSE_SPREAD` times the real images' (``spread``),
        after the first :data:`COLLAPSE_WARMUP` steps."""
        found: dict[str, str] = {}
        if step < COLLAPSE_WARMUP:
            return found
        for side in self.trained_sides():
            spread = logged.get(f"spread{side}")
            if spread is not None and spread < COLLAPSE_SPREAD:
                found[f"spread{side}"] = (f"the {side} px level's samples vary {spread:.2f}x as much as the real "
                                          f"images (below {COLLAPSE_SPREAD}): it may be collapsing to a few "
                                          "images; look at the sample grid")
        return found

    @staticmethod
    def _judge(critic: nn.Module, condition: Tensor | None, labels: Tensor | None, images: Tensor) -> Tensor:
        """The critic's logits on ``images``: one or more batches of the size of ``condition``/``labels``."""
        if condition is not None:
            images = torch.cat([condition.repeat(len(images) // len(condition), 1, 1, 1), images], 1)
        if labels is not None:
            labels = labels.repeat(len(images) // len(labels))
        return critic(images, labels)

    def _draw(self, networks: dict[str, nn.Module], side: int, count: int, labels: Tensor | None,
              condition: Tensor | None, device: torch.device) -> Tensor:
        """One level's images for training, noise from torch's global RNG (which the engine seeds)."""
        shape = (count, self.options.latent) if condition is None else (count, 1, side, side)
        return self._level(networks, side, torch.randn(shape, device=device), labels, condition)

    def _level(self, networks: dict[str, nn.Module], side: int, noise: Tensor, labels: Tensor | None,
               condition: Tensor | None) -> Tensor:
        """One level's images in [-1, 1]: from ``noise`` at the base, else ``condition`` + the generated band."""
        if condition is None:
            return networks[self.generator_name(side)](noise, labels)
        return condition + networks[self.generator_name(side)](condition, noise, labels)

    def draw_noise(self, count: int, generator: torch.Generator, truncation: float | None = None,
                   above: int = 0) -> dict[int, Tensor]:
        """Every random input of ``count`` samples, by level side, for the levels finer than ``above``: the
        base's latent ``(count, latent)`` (truncated with ``truncation``), a plane ``(count, 1, s, s)`` per
        finer level. Drawn coarsest first from ``generator``, so a seed always means the same images."""
        noise: dict[int, Tensor] = {}
        for side in self.sides():
            if side <= above:
                continue
            if side == self.sides()[0]:
                noise[side] = truncated_noise(count, self.options.latent, generator, truncation)
            else:
                noise[side] = torch.randn(count, 1, side, side, generator=generator, device=generator.device)
        return noise

    def render(self, networks: dict[str, nn.Module], count: int, generator: torch.Generator,
               labels: Tensor | None, truncation: float | None = None, start: Tensor | None = None) -> list[Tensor]:
        """Every level of ``count`` new samples, coarsest first, in [-1, 1].

        ``start`` (``(count, 3, s, s)`` in [-1, 1], ``s`` one of the level sides) replaces the levels up to
        ``s``: only the finer ones are generated, on top of it (a level used as a conditional upsampler).
        """
        above = 0 if start is None else start.shape[-1]
        return self.render_noise(networks, self.draw_noise(count, generator, truncation, above), labels, start)

    def render_noise(self, networks: dict[str, nn.Module], noise: dict[int, Tensor], labels: Tensor | None,
                     start: Tensor | None = None) -> list[Tensor]:
        """:meth:`render` from given noise (:meth:`draw_noise`'s layout), e.g. a path between samples."""
        images: list[Tensor] = [] if start is None else [start]
        for side in self.sides():
            if images and images[-1].shape[-1] >= side:
                continue
            condition = pyr_up(images[-1]) if images else None
            images.append(self._level(networks, side, noise[side], labels, condition))
        return images

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: real images, then the levels of 8 fixed samples (coarse to fine, shown at full size)."""
        real = batch["image"][:8].float()
        generator = torch.Generator(device=real.device).manual_seed(0)
        labels = batch["label"][: len(real)] if self.options.classes else None
        levels = self.render(networks, len(real), generator, labels)
        return [real, *(_full_size(to_unit(level.float()).clamp(0, 1), self.options.size) for level in levels)]

    # ---------------------------------------------------------------------------------------- inference

    def check_infer_options(self, options: Any | None) -> None:
        if getattr(options, "pyramid", False) and getattr(options, "interpolate", 0):
            raise UsageError("--pyramid and --interpolate both make strips: choose one")

    def sample(self, networks: dict[str, nn.Module], count: int, generator: torch.Generator,
               options: SampleRequest) -> Tensor:
        """``count`` images, every random number from ``generator``; or strips: ``--pyramid`` (the levels,
        coarse to fine) or ``--interpolate F`` (F frames from each sample to the next, the last to the first)."""
        device = generator.device
        labels = None
        if self.options.classes:
            labels = (torch.full((count,), options.label, device=device) if options.label is not None else
                      torch.randint(len(self.options.classes), (count,), generator=generator, device=device))
        noise = self.draw_noise(count, generator, options.truncation)
        frames = getattr(options.task_options, "interpolate", 0)
        if frames:
            noise = {side: loop_path(values, frames) for side, values in noise.items()}
            labels = None if labels is None else labels.repeat_interleave(frames)
        levels = [to_unit(level.float()).clamp(0, 1) for level in self.render_noise(networks, noise, labels)]
        if getattr(options.task_options, "pyramid", False):
            return torch.cat([_full_size(level, self.options.size) for level in levels], dim=-1)
        if frames:  # (count * frames, 3, s, s) -> (count, 3, s, frames * s): each sample's walk in one row
            walk = levels[-1].unflatten(0, (count, frames))
            return torch.cat(walk.unbind(1), dim=-1)
        return levels[-1]

    def export_metadata(self) -> dict[str, str]:
        return {**super().export_metadata(), "gantool.architecture": self.options.describe_architecture()}

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval``: SWD with the real floor, diversity, KID/FID (see :mod:`gantool_lapgan.evaluate`)."""
        from gantool_lapgan.evaluate import evaluate_generation

        assert networks is not None  # the cards do not set eval_without_model
        return evaluate_generation(self, networks, data, options, context)


class LapGAN(DCGAN):
    """A Laplacian pyramid: ``generator16`` from noise, ``generator32`` ... add band-pass detail."""

    def __init__(self, spec: Any, options: LapGANTrainOptions | None = None) -> None:
        super().__init__(spec, options)
        self.options: LapGANTrainOptions

    def sides(self) -> tuple[int, ...]:
        return self.options.sides

    def trained_sides(self) -> tuple[int, ...]:
        return self.options.trained_sides

    def generator_name(self, side: int) -> str:
        return f"generator{side}"

    def critic_name(self, side: int) -> str:
        return f"critic{side}"


def _spread(images: Tensor) -> Tensor:
    """RMS distance between neighbouring images of a batch: logged as fake / real per level (``spread16``
    ...), a collapse guard: a level whose samples all look alike falls well below 1 (warn below ~0.8)."""
    return (images.float() - images.float().roll(1, 0)).square().mean().sqrt()


def _full_size(image: Tensor, size: int) -> Tensor:
    """``image`` enlarged to ``size`` with nearest neighbours, so every pyramid level shows its own pixels."""
    if image.shape[-1] == size:
        return image
    return F.interpolate(image, size=(size, size), mode="nearest")
