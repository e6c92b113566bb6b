"""gantool: a plugin-based GAN toolkit for images.

This module is imported by every CLI call, so it must stay cheap: no torch, no cv2.
Plugin authors need only what is re-exported here.
"""

from __future__ import annotations

from gantool.hookspecs import hookimpl
from gantool.spec import TaskSpec

__version__ = "0.1.0"

__all__ = ["TaskSpec", "__version__", "hookimpl"]
