"""A folder of images, optionally labelled by sub-folder, at one square size: what generation tasks train on.

``root/cat/*.png, root/dog/*.png`` gives classes ``("cat", "dog")`` (sorted sub-folder names, label =
index); a flat folder of images is one unnamed class. Each image is centre-cropped to a square (the
largest that fits), resized to ``size`` with antialiasing and kept in memory as 8-bit (9,000 faces at
64 px are 110 MB), so after the first epoch no file is decoded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gantool.errors import InputError
from gantool.image.files import list_images
from gantool.lib.data import load_image, resize


def class_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` that directly hold images, sorted by name (the classes)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and list_images(p))


def square(image: Tensor, size: int) -> Tensor:
    """``(C, H, W)`` centre-cropped to the largest square and resized to ``size`` x ``size``."""
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize(image[:, top:top + side, left:left + side], size)


class LabelledImages(Dataset):
    """Items ``{"image": (3, size, size) float in [0, 1], "label": () int64}``.

    Args:
        root: A folder of images, or of class sub-folders of images.
        size: Side of the square images.
        classes: ``True``: labels from all sub-folders, sorted by name (an ``InputError`` when there are
            none); a sequence of names: those sub-folders only, labelled in that order. ``False``: every
            image of ``root`` and its sub-folders, with label 0.
        flip: Random left-right flips (from torch's global RNG, which the trainer seeds per sample).
        limit: Use only the first ``limit`` images (in sorted order), e.g. for a quick evaluation.
    """

    def __init__(self, root: str | Path, size: int, *, classes: bool | Sequence[str] = False, flip: bool = False,
                 limit: int | None = None) -> None:
        self.root, self.size, self.flip = Path(root), size, flip
        if not self.root.is_dir():
            raise InputError(f"'{root}' is not a folder of images")
        folders = class_folders(self.root)
        if classes and not folders:
            raise InputError(f"'{root}' has no class sub-folders of images (needed for --classes: root/NAME/*.png)")
        if classes and not isinstance(classes, bool):
            found = {folder.name: folder for folder in folders}
            missing = [name for name in classes if name not in found]
            if missing:
                raise InputError(f"'{root}' has no class sub-folder(s) {missing}; it has {sorted(found)}")
            folders = [found[name] for name in classes]
        self.class_names: tuple[str, ...] = tuple(p.name for p in folders) if classes else ()
        groups = [(index, list_images(folder)) for index, folder in enumerate(folders)] if classes else [
            (0, list_images(self.root)), *((0, list_images(folder)) for folder in folders)]
        self.items: list[tuple[Path, int]] = sorted((path, label) for label, paths in groups for path in paths)
        if limit is not None:
            self.items = self.items[:limit]
        if not self.items:
            raise InputError(f"no images in '{root}' (nor in its sub-folders)")
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.items)

    def image(self, index: int) -> Tensor:
        """Image ``index`` as a ``(3, size, size)`` float tensor, without augmentation."""
        stored = self._cache.get(index)
        if stored is None:
            stored = (square(load_image(self.items[index][0]), self.size) * 255).round().to(torch.uint8)
            self._cache[index] = stored
        return stored.float() / 255

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.image(index)
        if self.flip and float(torch.rand(())) < 0.5:
            image = image.flip(-1)
        return {"image": image, "label": torch.tensor(self.items[index][1])}

    def stack(self, count: int | None = None, start: int = 0) -> Tensor:
        """Images ``start`` to ``start + count`` (all by default) as one ``(N, 3, size, size)`` batch."""
        stop = len(self) if count is None else min(len(self), start + count)
        return torch.stack([self.image(i) for i in range(start, stop)])
