"""Helpers for plugin authors' tests: tiny images, a toy task, and a smoke check of a task's contract.

The toy task (``TOY_SPEC``, implemented by :class:`ToyTask`) is a complete, real GAN in miniature: a
two-layer conv "generator" learns to brighten images (target ``sqrt(x)``) against a tiny conv critic,
with an LSGAN + L1 loss, instance noise drawn from the global RNG, and a one-image history pool kept in
``state_dict``. Its data is synthetic, so it needs no files; its ``evaluate`` (``gantool eval toy``) scores
a folder of images against the same target. gantool's own engine tests use it; it is also a short,
working example of a ``Task``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import Dataset

from gantool import EvalColumn, EvalContext, EvalResult, flag, hookimpl
from gantool.errors import InputError
from gantool.lib.losses import AdversarialLoss
from gantool.plugin.common import TrainingOptions
from gantool.plugin.spec import TaskSpec
from gantool.plugin.task import Task

# ---------------------------------------------------------------------------------------------- images


def random_image(height: int = 32, width: int = 32, channels: int = 3, *, seed: int = 0) -> np.ndarray:
    """``(H, W, C)`` float32 noise in [0, 1], the ``gantool.io`` convention."""
    return np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)


def gradient_image(height: int = 32, width: int = 32, channels: int = 3) -> np.ndarray:
    """``(H, W, C)`` float32 smooth ramps in [0, 1]: easy to eyeball, different in every channel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramps = [x / max(width - 1, 1), y / max(height - 1, 1), (x + y) / max(width + height - 2, 1)]
    return np.stack([ramps[c % 3] for c in range(channels)], axis=2)


def smooth_photo(height: int = 24, width: int = 32, *, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1]: smooth ramps plus a little noise, photo-like enough that a filled
    hole or an upscale of it means something, and different for each seed."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    pixels = np.stack([ys, xs, (ys + xs) / 2], axis=-1) * 0.8 + rng.random((height, width, 3)) * 0.1
    return pixels.astype(np.float32)


def random_batch(batch: int = 2, channels: int = 3, height: int = 16, width: int = 16, *,
                 seed: int = 0) -> Tensor:
    """``(B, C, H, W)`` float32 tensor in [0, 1] from its own generator (global RNG untouched)."""
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


def random_mask(batch: int = 1, height: int = 16, width: int = 16, *, seed: int = 0) -> Tensor:
    """``(B, 1, H, W)`` float32 mask of 0s and 1s (1 = hole), about half of it holes, from its own generator."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 1, height, width, generator=generator) < 0.5).float()


def random_input(channels: int, height: int = 16, width: int = 16, *, seed: int = 0) -> Tensor:
    """A ``(1, C, H, W)`` stand-in for one declared input: random RGB for 3 channels, a random mask for 1."""
    if channels == 1:
        return random_mask(1, height, width, seed=seed)
    return random_batch(1, channels, height, width, seed=seed)


# ------------------------------------------------------------------------------------------- toy task


@dataclass(kw_only=True)
class ToyTrainOptions:
    """Options of the toy task; ``channels`` is architecture, the ``*_at_step`` ones inject failures."""

    channels: int = flag(8, "Width of the toy networks.")
    lr: float = flag(2e-3, "Adam learning rate.")
    image_size: int = flag(16, "Side of the synthetic training images.")
    dataset_size: int = flag(32, "Number of synthetic training images.")
    nan_at_step: int = flag(-1, "Return a NaN loss at this 0-based step (tests).")
    interrupt_at_step: int = flag(-1, "Raise KeyboardInterrupt at this 0-based step, once (tests).")


@dataclass(kw_only=True)
class ToyEvalOptions:
    """Mean absolute error against the square root of each image (the toy's target), model vs unchanged input.

    DATA is a folder of images. Without --model only the unchanged input (the baseline) is measured.
    """

    limit: int = flag(0, "Score only the first N images, by name (0: all).", min=0)


_TOY_DEFAULTS = ToyTrainOptions()

TOY_SPEC = TaskSpec(
    name="toy",
    verb="brighten",
    summary="Toy GAN that learns to brighten images (for tests and as an example).",
    implementation="gantool.testing:ToyTask",
    train_options=ToyTrainOptions,
    scale=1,
    eval_options=ToyEvalOptions,
    eval_without_model=True,
)

TOY_EVAL_COLUMNS = (EvalColumn(name="input_l1", header="input L1", format=".4f"),
                    EvalColumn(name="model_l1", header="model L1", format=".4f"))


class ToyGenerator(nn.Module):
    """Two 3x3 convs with a residual: output = input + correction."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, image: Tensor) -> Tensor:
        return image + self.body(image)


class ToyCritic(nn.Module):
    """A two-layer PatchGAN-style critic."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, image: Tensor) -> Tensor:
        return self.body(image)


class ToyDataset(Dataset):
    """Synthetic images (fixed per index) with a random flip and crop offset drawn from the global RNG."""

    def __init__(self, size: int, image_size: int) -> None:
        self.size, self.image_size = size, image_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        side = self.image_size
        base = torch.rand(3, side + 4, side + 4, generator=torch.Generator().manual_seed(index))
        top, left = (int(v) for v in torch.randint(0, 5, (2,)))  # augmentation from the global RNG
        image = base[:, top:top + side, left:left + side]
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return {"input": image.contiguous(), "target": image.sqrt()}


class ToyTask(Task):
    """The toy GAN; see the module docstring."""

    def __init__(self, spec: TaskSpec, options: Any | None = None) -> None:
        super().__init__(spec, options)
        self.history: Tensor | None = None
        self._interrupted = False
        self.adversarial = AdversarialLoss("lsgan")

    def option(self, name: str) -> Any:
        """An option's value, falling back to ``ToyTrainOptions``' default (other specs may reuse ToyTask)."""
        return getattr(self.options, name, getattr(_TOY_DEFAULTS, name))

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": ToyGenerator(self.option("channels")), "critic": ToyCritic(self.option("channels"))}

    def build_dataset(self, data: Path) -> Dataset:
        del data  # synthetic
        return ToyDataset(self.option("dataset_size"), self.option("image_size"))

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        if step.index == self.option("interrupt_at_step") and not self._interrupted:
            self._interrupted = True
            raise KeyboardInterrupt
        real, source = batch["target"], batch["input"]
        history = self.history if self.history is not None else real[:1]
        with step.autocast():
            fake = step.networks["generator"](source)
            noise = 0.01 * torch.randn_like(real)  # instance noise: exercises the saved RNG state
            critic_input = torch.cat([real + noise, fake.detach() + noise, history.to(real.dtype)])
            scores = step.networks["critic"](critic_input)  # one forward per backward under DDP
            real_scores, fake_scores = scores[: len(real)], scores[len(real):]
            d_loss = self.adversarial.critic(real_scores, fake_scores)
        step.update("critic", d_loss)
        with step.autocast(), step.frozen("critic") as critic:
            g_adv = self.adversarial.generator(critic(fake))
            g_loss = 0.1 * g_adv + F.l1_loss(fake, real)
        step.update("generator", g_loss)
        self.history = fake[:1].detach().float()
        if step.index == self.option("nan_at_step"):
            g_loss = g_loss * float("nan")
        return {"d": d_loss, "g": g_loss}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        return [batch["input"], networks["generator"](batch["input"]).clamp(0, 1), batch["target"]]

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """L1 to the target ``sqrt(x)`` of the input (the baseline) and of the generator's output, per image.

        Rows are dicts here (a dataclass works too); ``mean_row`` adds the mean.
        """
        from gantool.lib.data import list_images, load_image
        from gantool.lib.metrics import mean_row

        paths = list_images(data)
        limit = getattr(options, "limit", 0)
        rows = []
        for path in paths[:limit] if limit else paths:
            image = load_image(path)[None]
            target = image.sqrt()
            row = {"image": path.stem, "input_l1": float((image - target).abs().mean()), "model_l1": None}
            if networks is not None:
                output = networks["generator"](image.to(context.device)).clamp(0, 1).float().cpu()
                row["model_l1"] = float((output - target).abs().mean())
            rows.append(row)
        if not rows:
            raise InputError(f"no images in '{data}'")
        return EvalResult(rows=[*rows, mean_row(rows)], columns=TOY_EVAL_COLUMNS)

    def export_metadata(self) -> dict[str, str]:
        return {**super().export_metadata(),
                "gantool.architecture": f"ToyGenerator(channels={self.option('channels')})"}

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history} if self.history is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = state.get("history")


# --------------------------------------------------------------------------------------- smoke checks


class TaskCards:
    """A plugin object registering the given task cards, as a plugin's ``__init__`` would: pass it to
    ``build_plugin_system(extra_plugins=[("name", TaskCards(SPEC))])`` to test a card through the real CLI."""

    def __init__(self, *specs: TaskSpec) -> None:
        self.specs = specs

    @hookimpl
    def gantool_register_tasks(self, register: Any) -> None:
        for spec in self.specs:
            register(spec)


def tiny_training_options(run_dir: Path, data: Path | str = ".", **overrides: Any) -> TrainingOptions:
    """``TrainingOptions`` for a seconds-long CPU run: 4 steps of batch 2, no workers, log every step."""
    base = TrainingOptions(data=Path(data), run_dir=Path(run_dir), steps=4, batch_size=2, num_workers=0,
                           device="cpu", log_every=1, sample_every=0, checkpoint_every=1000, ema_decay=0.9)
    return replace(base, **overrides)


def check_task(spec: TaskSpec, data: Path, run_dir: Path, task_options: Any = None, *,
               steps: int = 2, image_size: int = 16) -> None:
    """Train ``spec`` for a few CPU steps, export, reload and run it: the contract every task must meet.

    An image-to-image task must grow an image by its own :attr:`Task.scale` (which the model file must
    record); ``predict`` gets one random RGB batch, or for a task with several inputs a dict holding each
    declared input (:func:`random_input`: random RGB for 3 channels, a random binary mask for 1). A
    ``kind="sample"`` task must return ``(count, 1 or 3, H, W)`` images in [0, 1] from
    :meth:`Task.sample`, the same ones for the same generator seed, for every one of its
    :meth:`Task.class_names`. Raises ``AssertionError`` (or the engine's own error) naming what broke.
    """
    from gantool.engine.export import load_model
    from gantool.engine.training import Trainer

    options = tiny_training_options(run_dir, data, steps=steps, checkpoint_every=steps, sample_every=steps)
    result = Trainer(spec, options, task_options, progress=False).fit()
    assert result.exported is not None and result.exported.is_file(), "training exported no model"
    loaded = load_model(result.exported, spec)
    task = loaded.task
    assert loaded.metadata.get("gantool.scale") == str(task.scale), (
        f"the model file says gantool.scale {loaded.metadata.get('gantool.scale')!r} but the rebuilt task's "
        f"scale is {task.scale}; override Task.scale instead of writing gantool.scale in export_metadata()")
    if spec.kind == "sample":
        _check_sample(task, loaded.networks)
        return
    image: Tensor | dict[str, Tensor] = random_batch(1, 3, image_size, image_size)
    if len(spec.inputs) > 1:  # a multi-input task's predict gets a dict: synthesise every declared input
        image = {item.name: random_input(item.channels, image_size, image_size, seed=index)
                 for index, item in enumerate(spec.inputs)}
    with torch.no_grad():
        output = task.predict(loaded.networks, image, None)
    expected = (1, image_size * task.scale, image_size * task.scale)
    assert output.shape[0] == 1 and tuple(output.shape[-2:]) == expected[1:], (
        f"predict() returned {tuple(output.shape)}; expected (1, C, {expected[1]}, {expected[2]}) "
        f"(scale {task.scale})")
    assert torch.isfinite(output).all(), "predict() returned non-finite values"


def _check_sample(task: Task, networks: dict[str, nn.Module], count: int = 3) -> None:
    from gantool.plugin.task import SampleRequest

    labels: list[int | None] = [None, *range(len(task.class_names()))]
    for label in labels[:4]:
        request = SampleRequest(label=label)
        with torch.no_grad():
            first, again = (task.sample(networks, count, torch.Generator().manual_seed(7), request)
                            for _ in range(2))
        where = f"sample(count={count}" + (f", label={label})" if label is not None else ")")
        assert first.ndim == 4 and first.shape[0] == count and first.shape[1] in (1, 3), (
            f"{where} returned {tuple(first.shape)}; expected ({count}, 1 or 3, H, W)")
        assert torch.isfinite(first).all(), f"{where} returned non-finite values"
        assert float(first.min()) >= 0 and float(first.max()) <= 1, f"{where} returned values outside [0, 1]"
        assert torch.equal(first, again), (
            f"{where} differs between two calls with the same generator seed; draw every random number "
            "from the generator argument")
