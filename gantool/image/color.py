"""Colour conventions shared by every layer: the one Rec. 601 luma definition."""

from __future__ import annotations

import numpy as np

#: Rec. 601 luma weights of R, G and B (OpenCV's RGB2GRAY, JPEG's Y, PIL's "L").
REC601 = (0.299, 0.587, 0.114)
#: Rec. 601 luma weights (OpenCV's RGB2GRAY), used to return a gray input's result as gray.
LUMA = np.array(REC601, dtype=np.float32)
