"""Progress inside one image, for a caller that shows it (``gantool serve``): tiling reports each tile.

The batch pipeline counts images; a large image is one item that may take minutes. :func:`tiled_apply
<gantool.engine.tiling.tiled_apply>` calls :func:`tile_done` after each tile (one call for an untiled
image), which calls the observer the current thread installed with :func:`observe_tiles`, if any. The
observer may raise to stop the image (a cancel): the pipeline then fails that item, as for any error.
Thread-local, because the pipeline runs ``process`` on the thread that called it; torch-free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TileObserver = Callable[[int, int], None]
_local = threading.local()


@contextmanager
def observe_tiles(observer: TileObserver) -> Iterator[None]:
    """Call ``observer(done, total)`` after each tile computed on this thread inside the ``with`` block."""
    previous = getattr(_local, "observer", None)
    _local.observer = observer
    try:
        yield
    finally:
        _local.observer = previous


def tile_done(done: int, total: int) -> None:
    """Report tile ``done`` of ``total`` of the image in hand (a no-op unless someone observes)."""
    observer: TileObserver | None = getattr(_local, "observer", None)
    if observer is not None:
        observer(done, total)
