"""How large the tiles of one image may be: ``--tile auto`` from free memory and a measured working set.

:class:`TilePlan` picks a tile per image from the memory free on the device, the network's working set
per pixel (measured once on a small probe by :class:`LiveTensorBytes`) and, on the CPU, the image's own
full-size buffers; :func:`balanced_tile` then makes the tiles no larger than their count needs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from gantool.engine.tiling import TileSize

if TYPE_CHECKING:
    from gantool.engine.runtime import Runtime

logger = logging.getLogger(__name__)

#: Fraction of free memory that :class:`TilePlan` plans to use, per device type (the estimate is rough,
#: and CUDA needs room for cuDNN workspaces and allocator fragmentation; CPU RAM is shared with the OS).
MEMORY_FRACTION = {"cuda": 0.5, "cpu": 0.25}
AUTO_TILE_MIN, AUTO_TILE_MAX = 64, 2048
#: ``--tile auto`` on the CPU plans at most this much per image: its full-size buffers plus a tile's working
#: set. The compact x4 model ran at the same speed per pixel (6.2-6.9 us) with tiles from 192 to 640 pixels,
#: so larger tiles only cost memory. This still runs a 512x512 input whole (no overlap to recompute) and
#: kept a 4096x4096 result of that model at 1.2-1.3 GB of peak RSS, 0.7-0.8 GB of which is torch itself.
CPU_IMAGE_BYTES = 640 << 20
#: The CPU auto tile is not shrunk below this side to stay within CPU_IMAGE_BYTES: smaller tiles recompute
#: too much overlap for the memory they save (a 192-pixel tile does 19% more work with the default 16-pixel
#: overlap; 64-pixel tiles ran at half the speed). Free memory still limits it.
CPU_MIN_TILE = 192
#: On the CPU an image whose whole pass (working set plus full-size buffers) needs at most this many bytes
#: runs untiled, within the free-memory budget: tiling it would save less than half the memory, and tiles
#: cost overlap, stitching and a worse per-pixel speed at their borders. Ordinary photos (up to about 1 MP
#: with the compact x4 model) therefore run in one pass; larger images keep the CPU_IMAGE_BYTES bound.
CPU_WHOLE_IMAGE_BYTES = 2 * CPU_IMAGE_BYTES
#: A tile is planned at its measured live tensor bytes times this: oneDNN's scratch buffers and allocator
#: fragmentation are invisible to the measurement (the process's RSS grew by 1.4-2.4x of it).
WORKING_SET_MARGIN = 2.5
#: Side of the probe tile the working set is measured on; activations grow linearly with the pixel count.
PROBE_SIDE = 32



@dataclasses.dataclass(frozen=True)
class TilePlan:
    """How :func:`make_processor` tiles each image.

    Attributes:
        tile: A maximum tile side in input pixels, 0 for whole images, or ``None`` for auto.
        budget: Auto: bytes one image may use on the device (a fraction of what was free).
        bytes_per_pixel: Auto: what a tile needs per input pixel on the device (network working set plus
            the blend of its output).
        cpu: Auto: the device is the CPU, so the image's full-size buffers (:func:`full_image_bytes`) come
            out of the same budget, and image plus tile should stay within :data:`CPU_IMAGE_BYTES`.
    """

    tile: int | None
    budget: float = 0.0
    bytes_per_pixel: float = 1.0
    cpu: bool = True

    def tile_for(self, height: int, width: int, *, scale: int, overlap: int) -> TileSize:
        """The tile for a ``height`` x ``width`` input: 0 (whole image) or ``(height, width)`` for ``tiled_apply``.

        ``--tile N`` caps both sides at N. Auto caps the *area*: memory grows with the pixel count, so an
        image whose pixels fit the budget of a square tile runs whole (a 768x512 photo under a 512-pixel
        budget: one pass, not two 512-pixel tiles overlapping by 256); a larger one is tiled per axis.
        """
        if self.tile is not None:
            return balanced_tile(height, width, self.tile, overlap)
        if self.fits_whole(height, width, scale):
            return 0
        return balanced_tile(height, width, self.auto_side(height, width, scale), overlap)

    def fits_whole(self, height: int, width: int, scale: int) -> bool:
        """Whether auto runs the image in one pass: its whole working set fits the budget (and, on the CPU,
        :data:`CPU_WHOLE_IMAGE_BYTES`), or its pixels fit the largest square tile anyway."""
        side = self.auto_side(height, width, scale)
        if height * width <= side * side:
            return True
        if not self.cpu:
            return False
        whole = height * width * self.bytes_per_pixel + full_image_bytes(height, width, scale)
        return whole <= min(self.budget, CPU_WHOLE_IMAGE_BYTES)

    def auto_side(self, height: int, width: int, scale: int) -> int:
        """The largest tile side whose working set fits the budget (before balancing).

        On the CPU, what the image itself needs comes first; the tile gets the rest of
        :data:`CPU_IMAGE_BYTES`, or a :data:`CPU_MIN_TILE` tile when that is less, as far as ``budget`` allows.
        """
        if not self.cpu:
            return self._clamped(self._side(self.budget))
        full = full_image_bytes(height, width, scale)
        preferred = max(self._side(CPU_IMAGE_BYTES - full), CPU_MIN_TILE)
        return self._clamped(min(preferred, self._side(self.budget - full)))

    def _side(self, budget: float) -> int:
        return math.isqrt(int(max(budget, 0.0) / self.bytes_per_pixel))

    @staticmethod
    def _clamped(side: int) -> int:
        return max(AUTO_TILE_MIN, min(AUTO_TILE_MAX, side))


def plan_tiles(tile: int | None, on_tile: Callable[[torch.Tensor], torch.Tensor], *, scale: int,
               runtime: Runtime) -> TilePlan:
    """A fixed :class:`TilePlan`, or for auto one from free memory and ``on_tile``'s measured working set.

    The measurement runs ``on_tile`` once on a small probe; it is skipped with ``--compile`` (it would
    compile for the probe's shape) and when it fails, and then the generic estimate of
    :func:`gantool.engine.tiling.auto_tile_size` is used.
    """
    if tile is not None:
        return TilePlan(tile)
    device = runtime.device
    measured = None if runtime.compile else measure_bytes_per_pixel(on_tile, device)
    generic = 4.0 * (3 + 512 + 192 * scale**2)  # auto_tile_size's model of a typical generator
    network = generic if measured is None else measured * WORKING_SET_MARGIN
    blend = 2 * 4 * 3 * scale**2  # the output tile times the two blending windows, float32 on the CPU
    fraction = MEMORY_FRACTION.get(device.type, MEMORY_FRACTION["cpu"])
    return TilePlan(None, budget=free_device_bytes(device) * fraction, bytes_per_pixel=network + blend,
                    cpu=device.type == "cpu")


def full_image_bytes(height: int, width: int, scale: int, channels: int = 3) -> int:
    """CPU bytes an image needs besides its tiles: the decoded input and its tensor, and the stitched
    float32 result (which becomes the output array without a copy). A task's ``postprocess`` may add more."""
    return 4 * channels * height * width * (2 + scale * scale)


def balanced_tile(height: int, width: int, tile: int, overlap: int, *, multiple: int = 8) -> TileSize:
    """Per axis, the smallest side (rounded up to ``multiple``) that needs no more tiles than ``tile`` does;
    ``(height, width)`` of the tile, or 0 when one tile covers the image.

    ``tiled_apply`` spreads a fixed tile evenly, so a 520-pixel tile on a 2048-pixel side means 5 tiles
    overlapping by 138 pixels: 61% more work than the image. The same 5 tiles at 424 pixels overlap by
    the requested minimum only (7% more). An axis that fits in one tile is not split at all.
    """
    if tile <= 0 or (height <= tile and width <= tile):
        return 0
    overlap = min(overlap, tile // 2)  # what tiled_apply_with_backoff uses
    sides = []
    for length in (height, width):
        if length <= tile:
            sides.append(length)
        else:
            count = math.ceil((length - overlap) / (tile - overlap))
            side = math.ceil((length - overlap) / count) + overlap
            sides.append(min(tile, -(-side // multiple) * multiple))
    return sides[0], sides[1]


def measure_bytes_per_pixel(fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str, *,
                            side: int = PROBE_SIDE) -> float | None:
    """Peak bytes of the tensors ``fn`` allocates on a ``(1, 3, side, side)`` probe, per input pixel.

    Counted per torch function (:class:`LiveTensorBytes`), not from the allocator, so it means the same on
    every device. Returns ``None`` when ``fn`` fails on the probe (a network that needs larger inputs, say).
    """
    probe = torch.zeros(1, 3, side, side, device=device)
    meter = LiveTensorBytes()
    try:
        with torch.inference_mode(), meter:
            fn(probe)
    except Exception as error:  # any failure only means: no measurement
        logger.debug("working-set probe failed (%s); using the generic estimate", error)
        return None
    return meter.peak / side**2 if meter.peak > 0 else None


class LiveTensorBytes(TorchFunctionMode):
    """Within the block, the peak of the bytes held by tensors that torch functions returned (``peak``).

    Each storage is counted once, when a function first returns a tensor on it, and released when the last
    tensor object on it that was seen is garbage collected. A function returning one of its inputs (an
    in-place op) or a view of memory from outside the block allocates nothing. Temporaries inside one
    function (oneDNN's scratch, the steps of a Python-level op) are invisible, hence
    :data:`WORKING_SET_MARGIN`. A function mode, not a dispatch mode: entering a dispatch mode imports
    torch._dynamo (1.5 s and 160 MB of resident memory).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [bytes, tensor objects holding it]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outside = {t.untyped_storage().data_ptr() for t in inputs}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and not any(tensor is t for t in inputs):
                self._hold(tensor, outside)
        return out

    def _hold(self, tensor: torch.Tensor, outside: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        entry = self._storages.get(key)
        if entry is None:
            if key in outside:  # a view of an input that was not allocated in the block
                return
            entry = self._storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[key]


def free_device_bytes(device: torch.device) -> int:
    """Memory usable on ``device``: driver free + PyTorch's cached blocks on CUDA, available RAM otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            avail = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 4 << 30  # Unknown platform: assume a modest 4 GiB.
    try:  # A container's cgroup (v2) limit is usually tighter than the host's RAM.
        with open("/sys/fs/cgroup/memory.max") as fh, open("/sys/fs/cgroup/memory.current") as cur:
            limit = fh.read().strip()
            if limit != "max":
                avail = min(avail, int(limit) - int(cur.read()))
    except (OSError, ValueError):
        pass
    return avail
