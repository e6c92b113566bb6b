"""The heavy side of ``superres``: networks, data, degradations and the two-stage SR-GAN training step.

Stage ``pretrain`` trains the generator alone on L1 (a PSNR-oriented model, SRResNet/RRDB-PSNR in the
papers). Stage ``gan`` starts from such a model (``--pretrained``) and adds a patch critic: each step first
updates the critic on real HR crops vs. generated ones, then the generator on
``pixel * L1 + adversarial * GAN + perceptual * (VGG19 conv5_4 L1 | critic feature matching)``.

Data are HR crops only; the LR inputs are made from the batch on the training device in
:meth:`SuperResolution.training_step` (MATLAB-style bicubic, or a random blur/downscale/noise/JPEG chain),
which is cheaper there than in data-loader workers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.errors import UsageError
from gantool.image.io import check_work_size
from gantool.lib.losses import AdversarialLoss
from gantool.plugin.task import Task
from gantool_superres.networks import VGGFeatures, build_critic, build_generator
from gantool_superres.options import SuperResTrainOptions
from gantool_superres.resize import imresize

logger = logging.getLogger(__name__)

#: Ranges of the ``realistic`` degradation, drawn per image (a first-order Real-ESRGAN-style chain).
BLUR_SIGMA = (0.2, 3.0)  # isotropic Gaussian, in HR pixels
NOISE_SIGMA = (1.0 / 255, 25.0 / 255)  # additive Gaussian, on the LR image
GRAY_NOISE_PROBABILITY = 0.4  # same noise in all three channels (sensor-like luminance noise)
JPEG_QUALITY = (30.0, 95.0)
_BLUR_KERNEL = 21  # covers +-3 sigma of the widest blur


def degrade(hr: Tensor, scale: int, kind: str = "bicubic", *, generator: torch.Generator | None = None) -> Tensor:
    """Make low-resolution inputs from ``(B, 3, H, W)`` HR crops in [0, 1] (H, W multiples of ``scale``).

    ``bicubic`` is MATLAB's antialiased ``imresize(hr, 1/scale)``, the benchmark degradation.
    ``realistic`` draws, per image: Gaussian blur (sigma 0.2-3), bicubic downscale, Gaussian noise
    (sigma 1-25 grey levels, luminance-only 40% of the time) and a JPEG round trip (quality 30-95, kornia's
    differentiable codec). Random numbers come from ``generator`` (on ``hr.device``) or the global RNG.

    Returns:
        ``(B, 3, H / scale, W / scale)`` in [0, 1], same device and dtype as ``hr``.
    """
    if kind == "bicubic":
        return imresize(hr, 1.0 / scale).clamp_(0, 1)
    if kind != "realistic":
        raise ValueError(f"degradation must be 'bicubic' or 'realistic', got {kind!r}")
    import kornia

    batch, device = hr.shape[0], hr.device

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(batch, device=device, generator=generator)

    sigma = uniform(*BLUR_SIGMA).to(hr.dtype)
    blurred = kornia.filters.gaussian_blur2d(hr, (_BLUR_KERNEL, _BLUR_KERNEL), torch.stack([sigma, sigma], 1),
                                             border_type="reflect")
    low = imresize(blurred, 1.0 / scale).clamp_(0, 1)
    noise = torch.randn(low.shape, device=device, generator=generator, dtype=low.dtype)
    gray = torch.rand(batch, device=device, generator=generator) < GRAY_NOISE_PROBABILITY
    noise = torch.where(gray.view(-1, 1, 1, 1), noise[:, :1].expand_as(noise), noise)
    low = (low + noise * uniform(*NOISE_SIGMA).view(-1, 1, 1, 1).to(low.dtype)).clamp_(0, 1)
    quality = uniform(*JPEG_QUALITY)
    return kornia.enhance.jpeg_codec_differentiable(low, quality).clamp_(0, 1)


class HRCrops(Dataset):
    """Random square HR crops of every image under a folder: ``{"hr": (3, crop, crop)}`` in [0, 1].

    Crops come from :class:`gantool.data.ImageFolder` (images smaller than the crop are enlarged, left-right
    flips); this adds top-bottom flips and transposes, so all eight rotations/reflections occur. Randomness
    uses torch's global RNG, which the trainer seeds per sample.
    """

    def __init__(self, root: Path, crop: int) -> None:
        from gantool.lib.data import ImageFolder

        self.images = ImageFolder(root, crop=crop, recursive=True, flip=True)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        hr = self.images[index]["image"]
        if float(torch.rand(())) < 0.5:
            hr = hr.flip(-2)
        if float(torch.rand(())) < 0.5:
            hr = hr.transpose(-1, -2)
        return {"hr": hr.contiguous()}


class SuperResolution(Task):
    """Single-image super-resolution: ``(B, 3, h, w)`` to ``(B, 3, h*s, w*s)``, s = ``options.scale``.

    Networks: ``generator`` (always) and ``critic`` (stage ``gan`` only). Batches hold ``"hr"`` crops.
    """

    def __init__(self, spec: Any, options: SuperResTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else SuperResTrainOptions())
        self.options: SuperResTrainOptions
        self.vgg: VGGFeatures | None = None
        self.adversarial = AdversarialLoss(self.options.gan_loss)

    @property
    def scale(self) -> int:
        """The factor this task's generator upscales by (from the options, not the card's default)."""
        return self.options.scale

    @scale.setter
    def scale(self, value: int) -> None:
        raise AttributeError("a superres model's scale comes from its options (--scale), not from assignment")

    # ----------------------------------------------------------------------------------------- networks

    def _generator(self) -> nn.Module:
        o = self.options
        return build_generator(o.arch, scale=o.scale, width=o.width, blocks=o.body_blocks, skip=o.skip)

    def build_networks(self) -> dict[str, nn.Module]:
        """The generator, plus the critic in the GAN stage (loading ``--pretrained`` and the VGG file there)."""
        o = self.options
        networks = {"generator": self._generator()}
        if o.stage == "gan":
            networks["critic"] = build_critic(o)
            if o.pretrained:
                self._load_pretrained(networks["generator"], Path(o.pretrained))
            if o.perceptual_weight > 0:
                if o.vgg_weights:
                    self.vgg = VGGFeatures.from_file(o.vgg_weights)
                else:
                    logger.warning("superres: no --vgg-weights given, so the perceptual loss is replaced by "
                                   "critic feature matching (weight --perceptual-weight)")
        return networks

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the generator: inference never needs the critic, the pretrained file or VGG."""
        return {"generator": self._generator()}

    def _load_pretrained(self, generator: nn.Module, path: Path) -> None:
        from gantool.engine.export import load_model

        loaded = load_model(path, self.spec)
        theirs = cast(SuperResTrainOptions, loaded.task.options).describe_architecture()
        mine = self.options.describe_architecture()
        if theirs != mine:
            raise UsageError(f"--pretrained '{path}' holds a {theirs} generator, but this run builds {mine}; "
                             "pass the same --arch, --scale, --width and --blocks")
        generator.load_state_dict(loaded.networks["generator"].state_dict())
        logger.info("superres: generator initialised from %s", path)

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        """Random HR crops (side ``crop`` rounded down to a multiple of ``scale``) of every image under ``data``.

        Sub-folders are searched too, so point ``--data`` at the HR images only (not a benchmark folder
        that also holds ``LR_bicubic/``).
        """
        from gantool.image.io import read_image_size

        crop = self.options.hr_crop
        dataset = HRCrops(Path(data), crop)
        paths = dataset.images.paths
        sample = paths[:: max(1, len(paths) // 256)]  # headers only, and at most ~256 of them
        small = sum(1 for path in sample if min(read_image_size(path)) < crop)
        if small:
            logger.warning("superres: %d of %d training images checked are smaller than the %d-pixel crop and "
                           "get enlarged (soft targets); lower --crop or leave them out", small, len(sample), crop)
        return dataset

    def make_inputs(self, hr: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """LR inputs for HR crops with this run's degradation (see :func:`degrade`)."""
        with torch.no_grad():
            return degrade(hr, self.scale, self.options.degradation, generator=generator)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Pretrain: one L1 update of the generator. GAN: a critic update, then a generator update."""
        o = self.options
        hr = batch["hr"]
        lr = self.make_inputs(hr)
        generator = step.networks["generator"]
        if o.stage == "pretrain":
            with step.autocast():
                sr = generator(lr)
                loss = F.l1_loss(sr.float(), hr.float())
            step.update("generator", loss)
            return {"l1": loss}

        with step.autocast():
            sr = generator(lr)
        d_loss, real_logits, fake_logits = self.adversarial.update_critic(step, hr, sr)

        with step.autocast(), step.frozen("critic") as critic:
            adversarial, features = self.adversarial.generator_with_features(critic, hr, sr)
            pixel = F.l1_loss(sr.float(), hr.float())
            perceptual = self._perceptual_loss(sr, hr, features, step.device)
            g_loss = o.pixel_weight * pixel + o.adversarial_weight * adversarial + o.perceptual_weight * perceptual
        step.update("generator", g_loss)
        return {"d": d_loss, "g": g_loss, "l1": pixel, "adv": adversarial,
                ("vgg" if self.vgg is not None else "fm"): perceptual,
                "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}

    def _perceptual_loss(self, sr: Tensor, hr: Tensor, features: list[Tensor], device: torch.device) -> Tensor:
        """VGG19 conv5_4 L1 when weights were given, else L1 between critic features of fake and real."""
        if self.options.perceptual_weight <= 0:
            return sr.new_zeros(())
        if self.vgg is not None:
            self.vgg.to(device)
            with torch.no_grad():
                target = self.vgg(hr)
            return F.l1_loss(self.vgg(sr).float(), target.float())
        losses = []
        for feature in features:
            real, fake = feature.float().chunk(2)
            losses.append(F.l1_loss(fake, real.detach()))
        return torch.stack(losses).mean()

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: bicubic upscale of the LR input, the generator's output, the HR crop (fixed degradation)."""
        hr = batch["hr"]
        lr = self.make_inputs(hr, generator=torch.Generator(device=hr.device).manual_seed(0))
        sr = networks["generator"](lr).float().clamp(0, 1)
        bicubic = imresize(lr.float(), size=(hr.shape[-2], hr.shape[-1])).clamp(0, 1)
        return [bicubic, sr, hr.float()]

    # --------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """``(B, 3, h, w)`` RGB in [0, 1] to ``(B, 3, h*s, w*s)`` clamped to [0, 1] (safe to tile).

        ``--outscale`` is *not* applied here, because the engine calls this per tile and checks that each
        tile grows by exactly ``s``; apply it once to the stitched result with :meth:`postprocess`, or use
        :meth:`upscale` on whole images. A 1-channel input is run as gray RGB and returned as 1 channel.
        """
        del options
        generator = networks["generator"]
        if image.shape[1] == 1:
            return generator(image.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True).clamp_(0, 1)
        return generator(image).clamp_(0, 1)  # in place: the output is ours, and a copy is a full-size buffer

    def postprocess(self, output: Tensor, source_size: tuple[int, int], options: Any | None = None) -> Tensor:
        """Apply ``--outscale``: resize the full ``(B, C, h*s, w*s)`` result to ``round(h * outscale)``.

        Antialiased MATLAB-style bicubic (so shrinking below the model's scale does not alias). Returns
        ``output`` itself when no outscale is set or it equals the model's scale.
        """
        outscale = getattr(options, "outscale", None)
        if outscale is None:
            return output
        height, width = source_size
        size = (max(1, round(height * outscale)), max(1, round(width * outscale)))
        check_work_size(*size, what=f"the output with --outscale {outscale:g}")  # before allocating it
        if size == tuple(output.shape[-2:]):
            return output
        return imresize(output.float(), size=size).clamp_(0, 1)

    def upscale(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """Whole-image inference with ``--outscale``: :meth:`predict` then :meth:`postprocess`."""
        return self.postprocess(self.predict(networks, image, options), (image.shape[-2], image.shape[-1]), options)

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval superres``: PSNR/SSIM on Y of the model and of bicubic (see :mod:`.evaluate`)."""
        from gantool_superres.evaluate import evaluate_benchmark

        return evaluate_benchmark(self, networks, data, options, context)

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range and ``gantool.architecture``; export adds ``gantool.scale`` from :attr:`scale`."""
        return {**super().export_metadata(), "gantool.architecture": self.options.describe_architecture()}
