"""``gantool eval cyclegan|cut``: per image cycle PSNR and change; per direction FID and KID against the other domain.

Unpaired translation has no ground truth to compare with. What is measured on the held-out images:

- **cycle PSNR** (CycleGAN only, it needs both generators): ``a`` against ``G_BA(G_AB(a))`` (and ``b``
  against ``G_AB(G_BA(b))``), PSNR with peak 1 on 8-bit results: whether the translation keeps the content;
- **change**: mean absolute difference between ``a`` and ``G_AB(a)`` on [0, 1]: how much the translation
  alters the image. A model that returns its input has a perfect cycle and zero change, so the two
  columns are only meaningful together;
- **FID and KID** per direction, when the Inception network is installed (:mod:`gantool.lib.inception`):
  the translated test images of one domain against the *real* test images of the other (horses made
  zebras against real zebras), on the mean row; the row under it scores the untranslated inputs the same
  way, the baseline a translation must beat (horses against zebras: FID ~240). Published horse -> zebra
  FIDs on this test set (120 vs 140 images): CycleGAN 77.2, CUT 45.5 (Park et al. 2020).

The held-out split is ``testA/`` + ``testB/`` when present, else ``A/`` + ``B/``. Images are used at their
stored size unless ``size`` is given (the generators are fully convolutional).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.metrics import mean_row, psnr, to_8bit
from gantool_cyclegan.options import CycleGANEvalOptions, Direction, TranslateOptions

if TYPE_CHECKING:
    from gantool.plugin.task import Task

__all__ = ["COLUMNS", "UNTRANSLATED", "CycleRow", "evaluate_domains", "test_folders"]

#: The label of the row scoring the untranslated inputs (FID/KID baseline).
UNTRANSLATED = "untranslated"


@dataclass
class CycleRow:
    """Scores of one test image (A images fill the AtoB columns, B images the BtoA ones), or the means.

    FID and KID (x1e3) are set on the mean row (translations) and on the :data:`UNTRANSLATED` row only.
    """

    image: str
    ab_cycle_psnr: float | None = None
    ab_change: float | None = None
    ba_cycle_psnr: float | None = None
    ba_change: float | None = None
    ab_fid: float | None = None
    ab_kid: float | None = None
    ba_fid: float | None = None
    ba_kid: float | None = None


COLUMNS = (EvalColumn(name="ab_cycle_psnr", header="AtoB cycle PSNR"),
           EvalColumn(name="ab_change", header="AtoB change", format=".4f"),
           EvalColumn(name="ab_fid", header="AtoB FID", format=".1f"),
           EvalColumn(name="ab_kid", header="AtoB KID x1e3", format=".1f"),
           EvalColumn(name="ba_cycle_psnr", header="BtoA cycle PSNR"),
           EvalColumn(name="ba_change", header="BtoA change", format=".4f"),
           EvalColumn(name="ba_fid", header="BtoA FID", format=".1f"),
           EvalColumn(name="ba_kid", header="BtoA KID x1e3", format=".1f"))


def test_folders(data: Path) -> tuple[Path, Path]:
    """``(testA, testB)``, or ``(A, B)`` for an unsplit folder."""
    for a, b in (("testA", "testB"), ("A", "B")):
        if (data / a).is_dir() and (data / b).is_dir():
            return data / a, data / b
    raise InputError(f"'{data}' has neither testA/ + testB/ nor A/ + B/ folders of images")


def evaluate_domains(task: Task, networks: dict[str, nn.Module] | None, data: Path,
                     options: CycleGANEvalOptions | None, context: EvalContext,
                     directions: tuple[str, ...] = ("AtoB", "BtoA")) -> EvalResult:
    """Score a translation model on the test domains; rows for every A image, then every B image, the mean,
    and (with FID/KID) the untranslated inputs.

    Args:
        task: The task rebuilt from the model file; ``task.predict(networks, image, TranslateOptions(d))``
            translates in direction ``d``.
        networks: The generators on ``context.device``.
        data: A CycleGAN dataset folder (``testA/``, ``testB/``; or ``A/``, ``B/``).
        options: ``size`` (square side each image is resized to first; 0: as stored), ``inception``, ``seed``.
        context: The device.
        directions: What the model translates: both (CycleGAN: cycle PSNR too) or ``("AtoB",)`` (CUT).
    """
    from gantool.lib.data import list_images, load_image

    if networks is None:
        raise UsageError(f"{task.spec.name} evaluation needs a model (--model)")
    options = options if options is not None else CycleGANEvalOptions()
    rows: list[CycleRow] = []
    images: dict[str, list[Tensor]] = {"A": [], "B": []}
    translated: dict[str, list[Tensor]] = {"A": [], "B": []}  # by source domain
    for domain, folder in zip("AB", test_folders(Path(data)), strict=True):
        paths = list_images(folder)
        if not paths:
            raise InputError(f"no images in '{folder}'")
        there: Direction = "AtoB" if domain == "A" else "BtoA"
        back: Direction = "BtoA" if domain == "A" else "AtoB"
        for path in paths:
            image = _resized(load_image(path)[None], options.size)
            images[domain].append(to_8bit(image))
            if there not in directions:
                continue
            with torch.no_grad():
                output = task.predict(networks, image.to(context.device), TranslateOptions(direction=there))
                cycled = (task.predict(networks, output, TranslateOptions(direction=back))
                          if back in directions else None)
            output = to_8bit(output.float().cpu())
            translated[domain].append(output)
            cycle = None if cycled is None else float(psnr(to_8bit(cycled.float().cpu()), images[domain][-1]))
            scores = (cycle, float((output - images[domain][-1]).abs().mean()))
            name = f"{folder.name}/{path.stem}"
            rows.append(CycleRow(name, *scores) if domain == "A" else CycleRow(name, None, None, *scores))
    result_rows = [*rows, mean_row(rows)]
    notes = _distribution_scores(result_rows, images, translated, options, context) if options.inception else []
    return EvalResult(rows=result_rows, columns=COLUMNS, notes=notes)


def _distribution_scores(rows: list[CycleRow], images: dict[str, list[Tensor]],
                         translated: dict[str, list[Tensor]], options: CycleGANEvalOptions,
                         context: EvalContext) -> list[str]:
    """FID/KID of each direction's translations (mean row) and inputs (a new row) against the other domain."""
    from gantool.lib import inception
    from gantool.lib.featuredist import set_distances

    path = inception.inception_path()
    if path is None:
        return [inception.HOW_TO_GET]
    network = inception.load_inception(context.device)

    def features(batch: list[Tensor]) -> Any:
        return inception.image_features(batch, network)

    real = {domain: features(images[domain]) for domain in "AB"}
    baseline = CycleRow(UNTRANSLATED)
    for source, target, prefix in (("A", "B", "ab"), ("B", "A", "ba")):
        if not translated[source]:
            continue
        for row, scored in ((rows[-1], features(translated[source])), (baseline, real[source])):
            fid, kid, _ = set_distances(scored, real[target], seed=options.seed)
            setattr(row, f"{prefix}_fid", fid)
            setattr(row, f"{prefix}_kid", 1e3 * kid)
    rows.append(baseline)
    counts = f"{len(images['A'])} A and {len(images['B'])} B test images"
    return [inception.protocol_line(path, "cubic kernel, 100 subsets", "of the translations (mean row) and of the "
                                    f"untranslated inputs against the other domain's real images, {counts}")]


def _resized(image: Tensor, size: int) -> Tensor:
    if not size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
