"""``gantool eval lapgan|dcgan --diversity``: the mode-collapse check, samples' MS-SSIM diversity over real images'.

The MS-SSIM column of the SWD table is one estimate of 1,000 pairs, too noisy to tell 10% apart. This table
repeats the estimate with :data:`PAIRS` random pairs under three pair seeds (``--seed``, +1, +2) for two sets
of N images each:

- **samples**: N samples of the model (seeded, as in the SWD table);
- **real**: N images of DATA (a flat folder: the first N in sorted order; class sub-folders: N at random).

Higher MS-SSIM means more alike. The note gives samples over real: about 1 is as varied as the real
images, well above 1 is a model that repeats itself (a collapsed one scores several times the real value).
``--side`` scores both sets pyrDown'd to that side, which shows at which pyramid level diversity is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.diversity import pair_diversity
from gantool.lib.labelled import LabelledImages

if TYPE_CHECKING:
    from gantool_lapgan.task import DCGAN

#: Random pairs per estimate (each set, each pair seed).
PAIRS = 2000
#: Pair seeds per set: their spread shows how far one estimate can be trusted.
PAIR_SEEDS = 3
#: Memory the two float32 image sets may take, checked before either is made.
SET_BUDGET = 4 << 30


def evaluate_diversity(task: DCGAN, networks: dict[str, nn.Module], data: Path, options: Any, context: EvalContext,
                       side: int) -> EvalResult:
    """The rows of the module docstring, at ``side`` px."""
    from gantool_lapgan.evaluate import draw_samples, pick_real, shrink

    others = [flag for flag, given in (("--per-class", options.per_class), ("--neighbours", options.neighbours))
              if given]  # (--parzen with --diversity is refused by the Parzen table)
    if others:
        raise UsageError(f"--diversity prints a table of its own: run {' and '.join(others)} without it")
    size = task.options.size
    per_image = 2 * 3 * size * size * 4
    if options.count * per_image > SET_BUDGET:
        raise UsageError(f"--diversity with -n {options.count} would hold {options.count * per_image / 2**30:.1f} "
                         f"GiB of {size} px images; at most {SET_BUDGET // per_image} fit the {SET_BUDGET >> 30} GiB "
                         "allowed")
    real_images = LabelledImages(data, size)
    count = min(options.count, len(real_images))
    if count < 2:
        raise InputError(f"'{data}' has {len(real_images)} image(s); --diversity needs at least 2")
    real = shrink(pick_real(real_images, data, count, options.seed), side)
    samples = shrink(draw_samples(task, networks, count, options.seed, context.device), side)
    seeds = [options.seed + offset for offset in range(PAIR_SEEDS)]
    rows: list[dict[str, Any]] = []
    for label, images in (("samples", samples), ("real", real)):
        estimates = [pair_diversity(images, PAIRS, seed=seed) for seed in seeds]
        rows.append({"set": label, **{f"ms_ssim_{i}": value for i, value in enumerate(estimates)},
                     "ms_ssim": sum(estimates) / len(estimates)})
    ratio = rows[0]["ms_ssim"] / rows[1]["ms_ssim"]
    columns = [EvalColumn(name=f"ms_ssim_{i}", header=f"pair seed {seed}", format=".4f")
               for i, seed in enumerate(seeds)]
    columns.append(EvalColumn(name="ms_ssim", header="MS-SSIM mean", format=".4f"))
    at = f"{size} px" if side == size else f"{side} px (both sets pyrDown'd from {size} px)"
    notes = [f"MS-SSIM within each set of {count} images at {at}: mean of {PAIRS} random pairs, pair seeds "
             f"{', '.join(map(str, seeds))}; higher is more alike",
             f"samples / real = {ratio:.3f} ({100 * (ratio - 1):+.1f}%): "
             + ("within 10% of the real images' diversity" if abs(ratio - 1) <= 0.1 else
                "outside 10% of the real images' diversity")]
    if count < options.count:
        notes.insert(0, f"N lowered to {count}: '{data}' has {len(real_images)} images")
    return EvalResult(rows=rows, columns=columns, label="set", notes=notes)

