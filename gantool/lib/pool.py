"""``ImagePool``: the history buffer of generated images that CycleGAN feeds its discriminators.

Shrivastava et al. (2017) showed that updating a discriminator on a mix of current and older fakes keeps
it from forgetting and oscillating; CycleGAN keeps 50 per discriminator. The pool is pure bookkeeping:
it stores detached copies and runs no network, so it costs no forward passes.

Randomness comes from torch's global CPU RNG (``torch.rand`` / ``torch.randint`` without a generator),
which gantool's trainer seeds and saves in every checkpoint; together with :meth:`ImagePool.state_dict`
(the stored images themselves) this makes a resumed run draw exactly what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Return either the incoming fakes or, at random, older ones from a buffer of ``size`` images.

    For each image of a query batch: while the buffer is not full it is stored and returned unchanged;
    once full, with probability 1/2 it is returned unchanged, otherwise a uniformly chosen stored image is
    returned in its place and the new image takes that slot (the reference CycleGAN rule). ``size=0``
    disables the pool (every query returns its input).

    Args:
        size: How many images to keep (50 in CycleGAN).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """Images for the discriminator, ``(B, C, H, W)`` like ``images``, detached.

        Stored images keep their dtype and device; a returned batch is ``images``' dtype and device.
        """
        images = images.detach()
        if self.size == 0:
            return images
        picked: list[Tensor] = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                picked.append(image)
            elif float(torch.rand(())) < 0.5:
                slot = int(torch.randint(0, self.size, ()))
                old = self.images[slot]
                self.images[slot] = image.clone()
                picked.append(old.to(device=images.device, dtype=images.dtype))
            else:
                picked.append(image)
        return torch.stack(picked)

    def __call__(self, images: Tensor) -> Tensor:
        return self.query(images)

    def state_dict(self) -> dict[str, Any]:
        """``{"size": int, "images": [Tensor, ...]}``: loadable with ``torch.load(weights_only=True)``."""
        return {"size": self.size, "images": list(self.images)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the buffer saved by :meth:`state_dict` (a saved size other than ``self.size`` is refused)."""
        size = int(state.get("size", self.size))
        if size != self.size:
            raise ValueError(f"image pool holds up to {self.size} images, but the saved state was for {size}")
        images = list(state.get("images", []))
        if len(images) > self.size:
            raise ValueError(f"saved image pool has {len(images)} images, more than its size {self.size}")
        self.images = [image.detach().clone() for image in images]
