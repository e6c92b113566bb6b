"""``gantool eval lapgan|dcgan``: how close N samples are to N held-out real images, next to what two real sets score.

Rows, all against the same N real images ("reference"):

- **samples**: N samples of the model (seeded, so a rerun prints the same numbers);
- **real floor**: N *other* real images (a folder of class sub-folders: both sets drawn at random, so each
  holds every class). No generator can beat this row at this N; the distance between
  the two rows is what the model lacks.
- LapGAN with two levels or more (unconditional): the finest level used as a conditional upsampler of the
  other real images one level down (**real S/2 px + model detail**), next to the same images with no
  detail added (**real S/2 px, pyrUp only**): whether the level's detail brings the finest band closer
  to real, independently of the coarser generators.

Columns: sliced Wasserstein distance per pyramid level and their mean (:mod:`gantool.lib.swd`, ProGAN's
protocol, x1e3); mean MS-SSIM of 1,000 random pairs within the set (:mod:`gantool.lib.diversity`: a
collapsed model scores well *above* the floor); and, when the Inception file is installed
(:mod:`gantool.lib.inception`), KID x1e3 and FID against the reference, every row.
``--neighbours FILE`` also writes a nearest-neighbour grid against the training images (memorisation check).
``--per-class`` (class-conditional models) adds a **samples: NAME** and a **real floor: NAME** row per class,
SWD and MS-SSIM only: whether some classes are learnt and others not, which the pooled rows hide.
``--side S`` scores every set pyrDown'd to S px (no upsampler rows): coarse structure alone.
``--parzen K`` prints the Parzen-window log-likelihood instead (:mod:`gantool_lapgan.parzen_eval`), and
``--diversity`` the mode-collapse check with repeated MS-SSIM estimates (:mod:`gantool_lapgan.diversity_eval`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult, SampleRequest
from gantool.errors import InputError, UsageError
from gantool.lib.diversity import neighbour_grid, pair_diversity
from gantool.lib.labelled import LabelledImages, class_folders
from gantool.lib.swd import swd

if TYPE_CHECKING:
    from gantool_lapgan.task import DCGAN

CHUNK = 50


def draw_samples(task: DCGAN, networks: dict[str, nn.Module], count: int, seed: int, device: Any,
                 request: SampleRequest | None = None) -> Tensor:
    """``count`` samples on the CPU, chunk ``i`` drawn from a generator seeded with ``(seed, i)``."""
    chunks = []
    for index, start in enumerate(range(0, count, CHUNK)):
        generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
        chunk = task.sample(networks, min(CHUNK, count - start), generator, request or SampleRequest())
        chunks.append(chunk.float().cpu())
    return torch.cat(chunks)


def evaluate_generation(task: DCGAN, networks: dict[str, nn.Module], data: Path, options: Any,
                        context: EvalContext) -> EvalResult:
    """The rows described in the module docstring."""
    size = task.options.size
    side = _scoring_side(options.side, size)
    if options.parzen:
        from gantool_lapgan.parzen_eval import evaluate_parzen

        return evaluate_parzen(task, networks, data, options, context, side)
    if options.diversity:
        from gantool_lapgan.diversity_eval import evaluate_diversity

        return evaluate_diversity(task, networks, data, options, context, side)
    real = LabelledImages(data, size)
    count = min(options.count, len(real) // 2)
    notes = []
    if count < 2:
        raise InputError(f"'{data}' has {len(real)} image(s); the evaluation needs at least 4 (2N)")
    if count < options.count:
        notes.append(f"N lowered to {count}: '{data}' has {len(real)} images, and the floor needs 2N")
    reference, others = _real_sets(real, data, count, options.seed)
    samples = draw_samples(task, networks, count, options.seed, context.device)
    sets = [("samples", samples), ("real floor", others)]
    if len(task.sides()) > 1 and not task.class_names() and side == size:
        sets += _upsampler_sets(task, networks, others, options.seed, context.device)
    reference, sets = shrink(reference, side), [(label, shrink(images, side)) for label, images in sets]
    rows = [_swd_row(label, images, reference, options.seed) for label, images in sets]
    if options.per_class:
        rows += _per_class_rows(task, networks, data, count, options.seed, context.device, side)
    levels = [key for key in rows[0] if key.startswith("swd") and key != "swd_mean"]  # finest first
    columns = [EvalColumn(name=key, header=f"SWD {key[3:]}px") for key in levels]
    columns += [EvalColumn(name="swd_mean", header="SWD mean"), EvalColumn(name="ms_ssim", header="MS-SSIM",
                                                                           format=".4f")]
    notes += _inception_scores(rows, [images for _, images in sets], reference, options, context, columns)
    if options.neighbours:
        notes.append(_write_neighbours(samples[:8], Path(options.train_data or data), size, Path(options.neighbours)))
    at = f"{size} px" if side == size else f"{side} px (every set pyrDown'd from {size} px)"
    notes.insert(0, f"N = {count} samples (seed {options.seed}) and {count} real images against {count} other real "
                 f"images of '{data}' at {at}; SWD x1e3 (ProGAN protocol), MS-SSIM of 1000 pairs within each set")
    return EvalResult(rows=rows, columns=columns, label="set", notes=notes)


def _scoring_side(wanted: int | None, size: int) -> int:
    """``--side``, checked against the model's size: one of its coarser pyramid levels (8 px or more)."""
    if wanted is None or wanted == size:
        return size
    coarser = [size >> shift for shift in range(1, 8) if size >> shift >= 8]
    if wanted not in coarser:
        choices = ", ".join(map(str, coarser)) or "none"
        raise UsageError(f"--side {wanted} is not a coarser pyramid level of this {size} px model (choose from: "
                         f"{choices})")
    return wanted


def shrink(images: Tensor, side: int) -> Tensor:
    """``images`` pyrDown'd to ``side`` px: the coarsest level of their Gaussian pyramid (unchanged at full size)."""
    from gantool.lib.pyramid import gaussian_pyramid

    return gaussian_pyramid(images, (images.shape[-1] // side).bit_length())[-1]


def _swd_row(label: str, images: Tensor, reference: Tensor, seed: int) -> dict[str, Any]:
    """One row: SWD per level against ``reference``, their mean, and MS-SSIM within ``images``."""
    result = swd(images, reference, seed=seed)
    row: dict[str, Any] = {"set": label, **{f"swd{side}": value for side, value in zip(result.sides, result.levels,
                                                                                     strict=True)}}
    return {**row, "swd_mean": result.mean, "ms_ssim": pair_diversity(images, seed=seed)}


def _per_class_rows(task: DCGAN, networks: dict[str, nn.Module], data: Path, count: int, seed: int,
                    device: Any, side: int) -> list[dict[str, Any]]:
    """Per class: N / classes samples of it and as many of its real images against as many others of it."""
    names = task.class_names()
    if not names:
        raise InputError("--per-class needs a class-conditional model (trained with --classes)")
    real = LabelledImages(data, task.options.size, classes=names)  # an InputError names a missing class folder
    rows: list[dict[str, Any]] = []
    for label, name in enumerate(names):
        members = [index for index, (_, item_label) in enumerate(real.items) if item_label == label]
        each = min(max(2, count // len(names)), len(members) // 2)
        if each < 2:
            raise InputError(f"'{data / name}' has {len(members)} image(s); --per-class needs at least 4 per class")
        order = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed + label))[:2 * each]
        picked = [real.image(members[i]) for i in order.tolist()]
        reference, others = shrink(torch.stack(picked[:each]), side), shrink(torch.stack(picked[each:]), side)
        samples = shrink(draw_samples(task, networks, each, seed + label, device, SampleRequest(label=label)), side)
        rows += [_swd_row(f"samples: {name}", samples, reference, seed),
                 _swd_row(f"real floor: {name}", others, reference, seed)]
    return rows


def pick_real(real: LabelledImages, data: Path, count: int, seed: int) -> Tensor:
    """``count`` images: a flat folder's first (sorted); with class sub-folders, drawn at random (``seed``), so
    that they hold every class rather than the first class or two."""
    if not class_folders(data):
        return real.stack(count, 0)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    return torch.stack([real.image(i) for i in order])


def _real_sets(real: LabelledImages, data: Path, count: int, seed: int) -> tuple[Tensor, Tensor]:
    """The reference and floor sets: the two halves of :func:`pick_real`'s 2N images."""
    both = pick_real(real, data, 2 * count, seed)
    return both[:count], both[count:]


def _upsampler_sets(task: DCGAN, networks: dict[str, nn.Module], real: Tensor, seed: int,
                    device: Any) -> list[tuple[str, Tensor]]:
    """The finest level as a conditional upsampler of *real* images one level down, and ``pyr_up`` alone."""
    from gantool.lib.pyramid import pyr_down, pyr_up
    from gantool.lib.ranges import to_signed, to_unit

    coarse = pyr_down(real)
    generator = torch.Generator(device=device).manual_seed(seed)
    detailed = [to_unit(task.render(networks, len(chunk), generator, None, start=to_signed(chunk.to(device)))[-1])
                .float().clamp(0, 1).cpu() for chunk in coarse.split(CHUNK)]
    half = real.shape[-1] // 2
    return [(f"real {half}px + model detail", torch.cat(detailed)),
            (f"real {half}px, pyrUp only", pyr_up(coarse).clamp(0, 1))]


def _inception_scores(rows: list[dict[str, Any]], sets: list[Tensor], reference: Tensor, options: Any,
                      context: EvalContext, columns: list[EvalColumn]) -> list[str]:
    """KID and FID columns when the network is installed (and wanted); else a note saying how to get them."""
    from gantool.lib import inception

    if not options.inception:
        return []
    path = inception.inception_path()
    if path is None:
        return [inception.HOW_TO_GET]
    from gantool.lib.featuredist import frechet_distance, kernel_distance

    network = inception.load_inception(context.device)
    reference_features = inception.inception_features(reference, network)
    subset = min(1000, len(reference) // 2)  # subsets of the whole set would all be equal (sd 0)
    for row in rows:
        row.update(kid=None, kid_std=None, fid=None)  # the per-class rows stay empty (too few images each)
    for row, images in zip(rows, sets, strict=False):
        features = inception.inception_features(images, network)
        kid, kid_std = kernel_distance(features, reference_features, subset_size=subset, seed=options.seed)
        row["kid"], row["kid_std"] = 1e3 * kid, 1e3 * kid_std
        row["fid"] = frechet_distance(features, reference_features)
    columns += [EvalColumn(name="kid", header="KID x1e3", format=".2f"),
                EvalColumn(name="kid_std", header="KID sd", format=".2f"), EvalColumn(name="fid", header="FID")]
    return [f"KID (100 subsets of {subset}, cubic kernel) and FID on Inception pool features of {path.name} "
            f"(sha1 {inception.file_sha1(path)}), 8-bit images resized to 299 px bilinearly; FID is biased upwards "
            f"at small N: compare only at equal N"]


def _write_neighbours(samples: Tensor, train: Path, size: int, out: Path) -> str:
    from gantool.image.io import Image, write_image
    from gantool.image.tensor import to_array

    pool = LabelledImages(train, size).stack()
    write_image(out, Image(color=to_array(neighbour_grid(samples, pool))))
    return (f"nearest-neighbour grid (8 samples, each followed by its 7 nearest of {len(pool)} images of "
            f"'{train}'): {out}")
