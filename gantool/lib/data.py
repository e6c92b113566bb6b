"""Reusable training datasets: folders of images, aligned pairs (pix2pix) and unpaired domains (CycleGAN).

Every dataset is a map-style ``torch.utils.data.Dataset`` whose items are dicts of ``(C, H, W)`` float32
RGB tensors in [0, 1] (``channels=1`` gives luma instead). Files are read through :mod:`gantool.io`, so
a file that cannot be decoded raises an ``InputError`` naming it; gray files are repeated to 3 channels
and alpha is dropped.

Reproducible randomness (crops, flips, the unpaired B draw), in one of two modes:

- ``seed=None`` (default): the helpers draw from torch's global RNG. The trainer seeds it per sample from
  (seed, epoch, position) before ``__getitem__`` (see ``Task.build_dataset``), so data are identical for
  any ``--num-workers`` and after a resume.
- ``seed=N``: each item draws from its own ``torch.Generator`` seeded from (N, epoch, index) by
  :func:`item_generator`; call ``dataset.set_epoch(epoch)`` at the start of every epoch (as with
  ``DistributedSampler``) so epochs differ. This needs no global state at all, but DataLoader workers
  only see a ``set_epoch`` made before the loader's iterator is created (non-persistent workers).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gantool.errors import InputError, UsageError, few
from gantool.image.color import REC601
from gantool.image.files import list_images
from gantool.image.tensor import to_tensor

Size = int | tuple[int, int]


# ---------------------------------------------------------------------------------------------- helpers


def load_image(path: str | Path, *, channels: int = 3) -> Tensor:
    """Decode ``path`` to a ``(channels, H, W)`` float32 tensor in [0, 1] (alpha dropped)."""
    from gantool.image.io import read_image

    tensor = to_tensor(read_image(path).rgb())[0]
    if channels == 1:
        weights = torch.tensor(REC601, dtype=tensor.dtype)[:, None, None]
        return (tensor * weights).sum(0, keepdim=True)
    return tensor


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator whose stream depends only on (seed, epoch, index): order-, worker- and resume-proof."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def resize(image: Tensor, size: Size) -> Tensor:
    """``(C, H, W)`` resized to ``size`` (an int means square) with antialiased bilinear filtering."""
    h, w = _pair(size)
    if tuple(image.shape[-2:]) == (h, w):
        return image
    return F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp_(0, 1)


def random_crop(*images: Tensor, size: Size, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
    """The same random ``size`` window of every image (aligned pairs stay aligned).

    Images must share their height and width. One smaller than the crop is first enlarged (keeping its
    aspect ratio) just enough to cover it, rather than padded with made-up pixels.
    """
    ch, cw = _pair(size)
    h, w = images[0].shape[-2:]
    if any(tuple(i.shape[-2:]) != (h, w) for i in images):
        raise ValueError(f"random_crop needs images of one size, got {[tuple(i.shape[-2:]) for i in images]}")
    if h < ch or w < cw:
        factor = max(ch / h, cw / w)
        h, w = max(ch, round(h * factor)), max(cw, round(w * factor))
        images = tuple(resize(i, (h, w)) for i in images)
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    return tuple(i[..., top : top + ch, left : left + cw] for i in images)


def random_flip(*images: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
    """Mirror every image left-right together, with probability ``p``."""
    if float(torch.rand((), generator=generator)) < p:
        return tuple(i.flip(-1) for i in images)
    return images


def _pair(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class _Augmented(Dataset):
    """Shared resize -> crop -> flip pipeline and the two randomness modes (see the module docstring)."""

    def __init__(self, *, load_size: Size | None, crop: Size | None, flip: bool, seed: int | None,
                 channels: int) -> None:
        if channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {channels!r}")
        self.load_size, self.crop, self.flip, self.seed, self.channels = load_size, crop, flip, seed, channels
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random stream ``seed=N`` datasets use (no effect with ``seed=None``)."""
        self.epoch = epoch

    def _generator(self, index: int) -> torch.Generator | None:
        return None if self.seed is None else item_generator(self.seed, self.epoch, index)

    def _augment(self, images: tuple[Tensor, ...], generator: torch.Generator | None) -> tuple[Tensor, ...]:
        if self.load_size is not None:
            images = tuple(resize(i, self.load_size) for i in images)
        if self.crop is not None:
            images = random_crop(*images, size=self.crop, generator=generator)
        if self.flip:
            images = random_flip(*images, generator=generator)
        return tuple(i.contiguous() for i in images)


# --------------------------------------------------------------------------------------------- datasets


class ImageFolder(_Augmented):
    """Every image in a folder, for self-supervised tasks (super-resolution, inpainting, colorization).

    Items: ``{"image": (C, h, w)}``. Without ``crop`` sizes vary, so batch them only if all files match.
    """

    def __init__(self, root: str | Path, *, crop: Size | None = None, recursive: bool = False,
                 load_size: Size | None = None, flip: bool = False, seed: int | None = None,
                 channels: int = 3) -> None:
        super().__init__(load_size=load_size, crop=crop, flip=flip, seed=seed, channels=channels)
        self.root = Path(root)
        self.paths = list_images(root, recursive=recursive)
        if not self.paths:
            hint = "" if recursive else " (sub-folders are not searched; pass recursive=True)"
            raise InputError(f"no images in '{root}': expected image files directly in this folder{hint}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        (image,) = self._augment((load_image(self.paths[index], channels=self.channels),), self._generator(index))
        return {"image": image}


class PairedImages(_Augmented):
    """Aligned pairs for pix2pix-style tasks; items ``{"A": ..., "B": ...}`` with identical crops and flips.

    Layouts: ``"side-by-side"``: each file holds A | B, A the left half and B the right (pix2pix facades;
    an odd pixel column at the right is dropped). ``"folders"``: ``root/A`` and ``root/B`` hold files with
    matching names (the extension may differ). ``"auto"`` picks folders when ``A/`` and ``B/`` exist.
    ``direction="BtoA"`` swaps the two, so the task always maps ``A`` to ``B``. ``load_size`` resizes
    both to a square first (as pix2pix's resize-and-crop), then ``crop`` takes a random window.
    """

    def __init__(self, root: str | Path, *, layout: Literal["auto", "side-by-side", "folders"] = "auto",
                 direction: Literal["AtoB", "BtoA"] = "AtoB", load_size: Size | None = None,
                 crop: Size | None = None, flip: bool = False, seed: int | None = None,
                 recursive: bool = False, channels: int = 3) -> None:
        super().__init__(load_size=load_size, crop=crop, flip=flip, seed=seed, channels=channels)
        if layout not in ("auto", "side-by-side", "folders"):
            raise UsageError(f"layout must be auto, side-by-side or folders, got {layout!r}")
        if direction not in ("AtoB", "BtoA"):
            raise UsageError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.root, self.direction = Path(root), direction
        if layout == "auto":
            layout = "folders" if (self.root / "A").is_dir() and (self.root / "B").is_dir() else "side-by-side"
        self.layout = layout
        self.pairs: list[tuple[Path, Path | None]]
        if layout == "folders":
            self.pairs = _match_folders(self.root / "A", self.root / "B", recursive)
        else:
            self.pairs = [(p, None) for p in list_images(self.root, recursive=recursive)]
        if not self.pairs:
            raise InputError(f"no images in '{root}': expected side-by-side A|B images (left half A, right "
                             "half B) or A/ and B/ folders with matching file names")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path_a, path_b = self.pairs[index]
        if path_b is None:
            both = load_image(path_a, channels=self.channels)
            half = both.shape[-1] // 2
            if half == 0:
                raise InputError(f"'{path_a}' is {both.shape[-1]} pixel wide; a side-by-side pair needs A|B")
            a, b = both[..., :half], both[..., half : 2 * half]
        else:
            a, b = load_image(path_a, channels=self.channels), load_image(path_b, channels=self.channels)
            if a.shape[-2:] != b.shape[-2:] and self.load_size is None:
                raise InputError(f"pair differs in size: '{path_a}' is {tuple(a.shape[-2:])}, '{path_b}' is "
                                 f"{tuple(b.shape[-2:])} (H, W); fix the files or set load_size")
        if self.direction == "BtoA":
            a, b = b, a
        a, b = self._augment((a, b), self._generator(index))
        return {"A": a, "B": b}


class UnpairedImages(_Augmented):
    """Two unaligned domains for CycleGAN-style tasks; items ``{"A": ..., "B": ...}``, augmented separately.

    The length is that of the larger domain. Item ``i`` takes ``A[i % len(A)]`` and a B drawn so every
    epoch is reproducible: with ``seed=N``, ``B[perm[i % len(B)]]`` where ``perm`` is a permutation of B
    seeded by (N, epoch), so each epoch visits B in a fresh order and every B image equally often; with
    ``seed=None``, a uniform draw from the (per-sample seeded) global torch RNG, as in CycleGAN.
    """

    def __init__(self, root_a: str | Path, root_b: str | Path, *, load_size: Size | None = None,
                 crop: Size | None = None, flip: bool = False, seed: int | None = None,
                 recursive: bool = False, channels: int = 3) -> None:
        super().__init__(load_size=load_size, crop=crop, flip=flip, seed=seed, channels=channels)
        self.paths_a = list_images(root_a, recursive=recursive)
        self.paths_b = list_images(root_b, recursive=recursive)
        for name, root, paths in (("A", root_a, self.paths_a), ("B", root_b, self.paths_b)):
            if not paths:
                raise InputError(f"no images in domain {name} folder '{root}': expected image files of "
                                 "that domain (e.g. trainA/ and trainB/)")
        self._perm: tuple[int, Tensor] | None = None

    @classmethod
    def from_root(cls, root: str | Path, *, split: str = "train", **kwargs: object) -> UnpairedImages:
        """``root/trainA`` + ``root/trainB`` (CycleGAN's layout), or ``root/A`` + ``root/B``."""
        root = Path(root)
        for a, b in ((f"{split}A", f"{split}B"), ("A", "B")):
            if (root / a).is_dir() and (root / b).is_dir():
                return cls(root / a, root / b, **kwargs)  # type: ignore[arg-type]
        raise InputError(f"'{root}' has neither {split}A/ + {split}B/ nor A/ + B/ folders of unpaired images")

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def b_index(self, index: int) -> int:
        """Which B image item ``index`` uses in the current epoch."""
        if self.seed is None:
            return int(torch.randint(0, len(self.paths_b), (1,)))
        if self._perm is None or self._perm[0] != self.epoch:
            self._perm = (self.epoch, torch.randperm(len(self.paths_b),
                                                     generator=item_generator(self.seed, self.epoch, -1)))
        return int(self._perm[1][index % len(self.paths_b)])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = self._generator(index)
        a = load_image(self.paths_a[index % len(self.paths_a)], channels=self.channels)
        b = load_image(self.paths_b[self.b_index(index)], channels=self.channels)
        (a,) = self._augment((a,), generator)
        (b,) = self._augment((b,), generator)
        return {"A": a, "B": b}


def _match_folders(folder_a: Path, folder_b: Path, recursive: bool) -> list[tuple[Path, Path | None]]:
    """Pair files by relative path without extension; every mismatch reported in one error."""
    def by_stem(folder: Path) -> tuple[dict[str, Path], list[str]]:
        found: dict[str, Path] = {}
        clashes = []
        for path in list_images(folder, recursive=recursive):
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in found:
                clashes.append(f"{found[key].name} / {path.name}")
            found[key] = path
        return found, clashes

    (a, clash_a), (b, clash_b) = by_stem(folder_a), by_stem(folder_b)
    problems = [f"{len(only)} file(s) in {side}/ have no partner in {other}/ ({few(only)})"
                for side, other, only in (("A", "B", sorted(a.keys() - b.keys())),
                                          ("B", "A", sorted(b.keys() - a.keys()))) if only]
    problems += [f"ambiguous names in {side}/: {few(c)}" for side, c in (("A", clash_a), ("B", clash_b)) if c]
    if problems:
        raise InputError(f"paired folders in '{folder_a.parent}' do not match: " + "; ".join(problems))
    return [(a[key], b[key]) for key in sorted(a)]
