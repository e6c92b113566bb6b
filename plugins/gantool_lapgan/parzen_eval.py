"""``gantool eval lapgan|dcgan --parzen K``: the Parzen-window log-likelihood the GAN and LapGAN papers reported.

DATA (held-out real images) is shuffled with ``--seed`` and split: up to 1,000 images choose the kernel width,
up to 10,000 of the rest are the test images scored. Rows, each a Gaussian KDE on K images (:mod:`gantool.lib.parzen`):

- **samples**: K samples of the model (seeded, as in the SWD table);
- **training images** (with ``--train-data``): K images of the training folder, drawn at random. A model
  that copied its training set would score this, so it is the row to read the samples against;
- **training images, blurred**: the same images with their finest band removed (pyrDown, then pyrUp). A
  pixel-space KDE rewards smooth centres, which lie closer to every test image: when this row beats the
  sharp one, a higher score says little about detail, and a model with little fine detail can beat its
  own training set.

Higher is better (nats per image). ``--side`` scores every set pyrDown'd to that side, as in the SWD table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.labelled import LabelledImages
from gantool.lib.parzen import SIGMAS, parzen_log_likelihood

if TYPE_CHECKING:
    from gantool_lapgan.task import DCGAN

#: Most held-out images used to choose the kernel width (the protocol's 1,000 validation images) and scored
#: (CIFAR-10's test split holds 10,000): a folder of any size is read only this far.
VALIDATION, TEST = 1000, 10_000
#: Memory the KDE centres may take, checked before any is made: the float32 samples and, with --train-data, the
#: training images stacked and blurred plus their 8-bit cache (counted as three float copies more, a margin).
CENTRE_BUDGET = 4 << 30


def evaluate_parzen(task: DCGAN, networks: dict[str, nn.Module], data: Path, options: Any, context: EvalContext,
                    side: int) -> EvalResult:
    """The rows of the module docstring, at ``side`` px."""
    from gantool_lapgan.evaluate import draw_samples, shrink

    size, centres = task.options.size, options.parzen
    others = [flag for flag, given in (("--per-class", options.per_class), ("--neighbours", options.neighbours),
                                       ("--diversity", options.diversity)) if given]
    if others:
        raise UsageError(f"--parzen prints a table of its own: run {' and '.join(others)} without it")
    per_centre = 3 * size * size * 4 * (4 if options.train_data else 1)
    if centres * per_centre > CENTRE_BUDGET:
        raise UsageError(f"--parzen {centres} would hold {centres * per_centre / 2**30:.1f} GiB of {size} px images; "
                         f"at most {CENTRE_BUDGET // per_centre} fit the {CENTRE_BUDGET >> 30} GiB allowed")
    held_out = LabelledImages(data, size)
    if len(held_out) < 3:
        raise InputError(f"'{data}' has {len(held_out)} image(s); --parzen needs at least 3 (validation and test)")
    order = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(options.seed)).tolist()
    split = min(VALIDATION, len(order) // 2)
    validation = shrink(torch.stack([held_out.image(i) for i in order[:split]]), side)
    test = shrink(torch.stack([held_out.image(i) for i in order[split:split + TEST]]), side)
    sets = [("samples", shrink(draw_samples(task, networks, centres, options.seed, context.device), side))]
    if options.train_data:
        from gantool.lib.pyramid import pyr_down, pyr_up

        train = shrink(_random_images(Path(options.train_data), size, centres, options.seed), side)
        sets += [("training images", train), ("training images, blurred", pyr_up(pyr_down(train)).clamp(0, 1))]
    rows, notes = [], []
    for label, images in sets:
        result = parzen_log_likelihood(images, validation, test)
        rows.append({"set": label, "centres": len(images), "sigma": result.sigma, "parzen_ll": result.mean,
                     "parzen_se": result.stderr})
        if result.sigma in (SIGMAS[0], SIGMAS[-1]):
            notes.append(f"{label}: the best sigma, {result.sigma:.3f}, is at an end of the searched widths")
    columns = [EvalColumn(name="centres", header="centres", format=".0f"),
               EvalColumn(name="sigma", header="sigma", format=".3f"),
               EvalColumn(name="parzen_ll", header="Parzen LL (nats)", format=".1f"),
               EvalColumn(name="parzen_se", header="s.e.", format=".1f")]
    notes[:0] = [f"Gaussian KDE on each set's images at {side} px (values in [0, 1]); sigma from logspace(-1, 0, 10) "
             f"chosen on {len(validation)} images of '{data}', the log-likelihood measured on its other "
             f"{len(test)} (seed {options.seed}); higher is better, and unreliable as a ranking of models "
             "(Theis et al. 2016): read the samples against the training images"]
    return EvalResult(rows=rows, columns=columns, label="set", notes=notes)


def _random_images(folder: Path, size: int, count: int, seed: int) -> Tensor:
    """``count`` images of ``folder`` (and its class sub-folders) drawn at random, all of them when it has fewer."""
    images = LabelledImages(folder, size)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    return torch.stack([images.image(i) for i in order])
