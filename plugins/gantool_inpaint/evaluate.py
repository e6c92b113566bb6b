"""``gantool eval inpaint``: hole-filling quality per hole-ratio bucket, the model next to TELEA and NS.

Protocol (``docs/inpaint.md``; the same as ``inpaint-kodak256-v1`` when run on Kodak24 with its masks):

1. every image of DATA (sorted, sub-folders included) is cut into non-overlapping ``crop x crop`` tiles,
   row by row from the top left; a tile is named ``<stem>_c<k>``;
2. masks, 1 = hole: generated per bucket ``[lo, hi)`` with ``numpy.random.default_rng(1000 + bucket
   index)``, consumed in tile order (LaMa thick/medium/thin 0.5/0.35/0.15, rejection-sampled), or read
   from ``--masks DIR`` (> 127 = hole, resized nearest to the tile), each bucketed by its own ratio;
3. each method fills the tile (the model through ``predict`` with no dilation, so holes are exactly the
   mask's) and the result is composited, ``where(mask, fill, tile)``, and rounded to 8 bits;
4. scores per tile, averaged per bucket: PSNR over the hole pixels only (all channels, peak 1), PSNR and
   SSIM (11x11 Gaussian, sigma 1.5) of the whole tile, mean absolute error on hole pixels, seconds;
5. with the Inception file (:mod:`gantool.lib.inception`), FID and KID (x1e3) of each method's composited
   tiles against the original tiles of the same bucket, KID on all of them and paired (tile i against its own
   original: :func:`gantool.lib.featuredist.paired_mmd`, exactly 0 for a perfect fill); the mean rows average
   the buckets' values, like every other column.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError
from gantool.image.files import list_images
from gantool.image.io import read_image
from gantool.image.tensor import to_tensor
from gantool.lib.masks import generate_mask
from gantool.lib.metrics import psnr, ssim, to_8bit
from gantool_inpaint.data import THRESHOLD
from gantool_inpaint.options import InpaintEvalOptions, InpaintOptions

if TYPE_CHECKING:
    from gantool_inpaint.task import Inpaint

__all__ = ["COLUMNS", "BucketRow", "evaluate_buckets", "hole_psnr", "tiles"]

#: Seed of bucket i's mask generator: 1000 + i (protocol inpaint-kodak256-v1).
SEED = 1000
COLUMNS = (EvalColumn(name="tiles", header="tiles", format=".0f"),
           EvalColumn(name="hole_psnr", header="hole PSNR"), EvalColumn(name="psnr", header="PSNR"),
           EvalColumn(name="ssim", header="SSIM", format=".4f"),
           EvalColumn(name="hole_l1", header="hole L1", format=".4f"),
           EvalColumn(name="seconds", header="s/img", format=".3f"))
INCEPTION_COLUMNS = (EvalColumn(name="fid", header="FID", format=".1f"),
                     EvalColumn(name="kid", header="KID x1e3", format=".1f"))
Filler = Callable[[Tensor, Tensor], Tensor]


@dataclass
class BucketRow:
    """Mean scores of one method on one bucket: ``bucket`` is ``"<lo>-<hi> <method>"`` (``"mean <method>"``
    over all buckets), with ``method`` ``model``, ``telea`` or ``ns``."""

    bucket: str
    tiles: int
    hole_psnr: float
    psnr: float
    ssim: float
    hole_l1: float
    seconds: float
    fid: float | None = None
    kid: float | None = None


def tiles(data: Path, crop: int) -> list[tuple[str, Tensor]]:
    """``(<stem>_c<k>, (1, 3, crop, crop))`` for every non-overlapping tile, row-major from the top left."""
    found = []
    for path in list_images(data, recursive=True):
        image = to_tensor(read_image(path).rgb())
        height, width = image.shape[-2:]
        k = 0
        for top in range(0, height - crop + 1, crop):
            for left in range(0, width - crop + 1, crop):
                found.append((f"{path.stem}_c{k}", image[..., top : top + crop, left : left + crop]))
                k += 1
    return found


def hole_psnr(result: Tensor, target: Tensor, hole: Tensor) -> float:
    """PSNR (peak 1) over the hole pixels only, all channels."""
    weight = hole.expand_as(target).bool()
    mse = (result.double() - target.double())[weight].square().mean()
    return float(10.0 * torch.log10(1.0 / mse))


def _masks(options: InpaintEvalOptions, crops: list[tuple[str, Tensor]], names: dict[str, int],
           ranges: list[tuple[float, float]]) -> list[list[tuple[int, Tensor]]]:
    """Per bucket, ``(tile index, (1, 1, c, c) mask)`` pairs for the (first ``--limit``) ``crops``; ``names``
    maps every tile's name to its index."""
    size = (options.crop, options.crop)
    if options.masks == "generated":
        found = []
        for index, bounds in enumerate(ranges):
            rng = np.random.default_rng(SEED + index)
            found.append([(i, torch.from_numpy(generate_mask(rng, size, "mixed", bounds)).float()[None, None])
                          for i in range(len(crops))])
        return found
    folder = Path(options.masks)
    if not folder.is_dir():
        raise InputError(f"--masks '{options.masks}' is neither 'generated' nor a folder")
    buckets: list[list[tuple[int, Tensor]]] = [[] for _ in ranges]
    for order, path in enumerate(list_images(folder, recursive=True)):
        gray = read_image(path).resized_nearest(*size)
        mask = (to_tensor(gray.color[..., :1] if gray.is_gray else gray.color.mean(2, keepdims=True)) > THRESHOLD)
        ratio = float(mask.float().mean())
        tile = names.get(path.stem, order % len(crops))
        for index, (low, high) in enumerate(ranges):
            if low <= ratio < high and tile < len(crops):
                buckets[index].append((tile, mask.float()))
    return buckets


def evaluate_buckets(task: Inpaint, networks: dict[str, nn.Module] | None, data: Path,
                     options: InpaintEvalOptions | None, context: EvalContext) -> EvalResult:
    """Score the model (if any), TELEA r=5 and NS r=4 per hole-ratio bucket; rows per bucket and method."""
    from gantool.image.classical import ClassicalMethod, classical_inpaint

    options = options if options is not None else InpaintEvalOptions()
    crops = tiles(Path(data), options.crop)
    if not crops:
        raise InputError(f"no image in '{data}' is at least {options.crop}x{options.crop} pixels (see --crop)")
    names = {name: i for i, (name, _) in enumerate(crops)}
    crops = crops[: options.limit] if options.limit else crops
    edges = [e / 100 for e in options.buckets]
    ranges = list(zip(edges[:-1], edges[1:], strict=False))

    def classical(method: ClassicalMethod, radius: int) -> Filler:
        def fill(image: Tensor, hole: Tensor) -> Tensor:
            array = classical_inpaint(image[0].permute(1, 2, 0).numpy(), hole[0, 0].numpy() > 0.5, method, radius)
            return torch.from_numpy(array).permute(2, 0, 1)[None]
        return fill

    methods: dict[str, Filler] = {"telea": classical("telea", 5), "ns": classical("ns", 4)}
    if networks is not None:
        plain = InpaintOptions(dilate=0)

        def model(image: Tensor, hole: Tensor) -> Tensor:
            inputs = {"image": image.to(context.device), "mask": hole.to(context.device)}
            return task.predict(networks, inputs, plain).float().cpu()
        methods["model"] = model

    rows: list[BucketRow] = []
    notes: list[str] = []
    distances = _Distances(crops, context, notes) if options.inception else None
    for (low, high), pairs in zip(ranges, _masks(options, crops, names, ranges), strict=True):
        label = f"{round(low * 100)}-{round(high * 100)}"
        if not pairs:
            notes.append(f"bucket {label} %: no mask in this range")
            continue
        for name, fill in methods.items():
            row, results = _score(f"{label} {name}", fill, [(crops[i][1], mask) for i, mask in pairs])
            if distances is not None:
                row.fid, row.kid = distances.score(results, [i for i, _ in pairs], key=(label, name))
            rows.append(row)
        if distances is not None and "model" in methods:
            notes.extend(distances.compare(label, "model", "telea"))
    for name in methods:
        mine = [row for row in rows if row.bucket.endswith(f" {name}")]
        if mine:
            rows.append(BucketRow(f"mean {name}", sum(r.tiles for r in mine),
                                  *(_mean([getattr(r, f) for r in mine])
                                    for f in ("hole_psnr", "psnr", "ssim", "hole_l1", "seconds", "fid", "kid"))))
    if networks is None:
        notes.append("no --model: only the classical baselines were measured")
    columns: tuple[EvalColumn, ...] = COLUMNS
    if distances is not None and distances.path is not None:
        columns += INCEPTION_COLUMNS
        notes.append(distances.protocol())
    return EvalResult(rows=rows, columns=columns, label="bucket", notes=notes)


def _mean(values: list[Any]) -> Any:
    """Mean of ``values``; None when any is None (e.g. FID of a bucket of one tile)."""
    return None if any(v is None for v in values) else float(np.mean(values))


#: Random halves of a bucket's tiles over which two methods' KIDs are compared (:meth:`_Distances.compare`).
SUBSETS = 100


class _Distances:
    """FID and KID of filled tiles against the original tiles they came from; the originals' Inception features
    are computed once per tile. Without the Inception file, ``path`` is None and the notes say how to get it."""

    def __init__(self, crops: list[tuple[str, Tensor]], context: EvalContext, notes: list[str]) -> None:
        from gantool.lib import inception

        self.crops, self.path = crops, inception.inception_path()
        self.network: Any = None
        self.originals: dict[int, Any] = {}
        self.scored: dict[tuple[str, str], tuple[Any, Any]] = {}  # (bucket, method): (features, reference)
        if self.path is None:
            notes.append(inception.HOW_TO_GET)
        else:
            self.network = inception.load_inception(context.device)

    def score(self, results: list[Tensor], tiles: list[int],
              key: tuple[str, str] | None = None) -> tuple[float | None, float | None]:
        """``(FID, KID x1e3)`` of ``results`` against the original ``tiles`` (same order); None for fewer than 2.

        ``key`` (bucket, method): keep the features for :meth:`compare`."""
        from gantool.lib import inception
        from gantool.lib.featuredist import whole_set_distances

        if self.path is None or len(results) < 2:
            return None, None
        todo = sorted(set(tiles) - set(self.originals))
        if todo:
            found = inception.image_features([to_8bit(self.crops[i][1]) for i in todo], self.network)
            self.originals.update(zip(todo, found, strict=True))
        reference = np.stack([self.originals[i] for i in tiles])
        features = inception.image_features(results, self.network)
        if key is not None:
            self.scored[key] = (features, reference)
        fid, kid = whole_set_distances(features, reference, paired=True)
        return fid, 1e3 * kid

    def compare(self, bucket: str, first: str, second: str, subsets: int = SUBSETS) -> list[str]:
        """One note: ``first``'s KID minus ``second``'s over the same random halves of the bucket's tiles.

        Both methods filled the same tiles, so their KIDs move together from one draw of tiles to another;
        the spread of the *difference* over halves says whether a gap is more than the draw."""
        from gantool.lib.featuredist import paired_mmd

        if (bucket, first) not in self.scored or (bucket, second) not in self.scored:
            return []
        (a, reference), (b, _) = self.scored[(bucket, first)], self.scored[(bucket, second)]
        count = len(reference)
        if count < 8:
            return []
        rng = np.random.default_rng(0)
        gaps = []
        for _ in range(subsets):
            half = rng.choice(count, count // 2, replace=False)
            gaps.append(1e3 * (paired_mmd(a[half], reference[half]) - paired_mmd(b[half], reference[half])))
        lower = sum(gap < -1e-6 for gap in gaps)  # a rounding-level difference is a tie, not a win
        return [f"bucket {bucket} %: KID {first} - {second} {np.mean(gaps):+.1f} x1e3 (sd {np.std(gaps):.1f} over "
                f"{subsets} random halves of its {count} tiles; {first} lower in {lower} of {subsets})"]

    def protocol(self) -> str:
        from gantool.lib import inception

        assert self.path is not None
        return inception.protocol_line(self.path, "unbiased, paired, on all tiles of a bucket", "of each method's "
                                       "composited tiles against the bucket's original tiles; mean rows: the "
                                       "buckets' mean")


def _score(bucket: str, fill: Filler, pairs: list[tuple[Tensor, Tensor]]) -> tuple[BucketRow, list[Tensor]]:
    """The bucket's mean scores and the composited 8-bit tiles (for FID/KID)."""
    scores, results = [], []
    for image, hole in pairs:
        start = time.perf_counter()
        with torch.no_grad():
            filled = fill(image, hole)
        seconds = time.perf_counter() - start
        target = to_8bit(image)
        result = to_8bit(torch.where(hole > 0.5, filled, image))
        weight = hole.expand_as(target)
        hole_l1 = float(((result - target).abs() * weight).sum() / weight.sum().clamp_min(1))
        scores.append((hole_psnr(result, target, hole), float(psnr(result, target)), float(ssim(result, target)),
                       hole_l1, seconds))
        results.append(result)
    means = np.mean(np.asarray(scores), axis=0)
    return BucketRow(bucket, len(pairs), *(float(v) for v in means)), results
