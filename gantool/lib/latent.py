"""Walking between Gaussian latents: spherical interpolation (slerp), as generation toolkits' interpolation strips.

A straight line between two standard-normal vectors passes close to the origin, where the generator was
never trained (the norm of a d-dimensional draw is about sqrt(d)); slerp follows the great circle
between them instead and keeps the norm near sqrt(d) all the way (Shoemake 1985; White 2016 for GANs).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Below this angle (radians) slerp is a straight line to float precision, and sin(angle) would divide by ~0.
_PARALLEL = 1e-4


def slerp(start: Tensor, end: Tensor, t: Tensor) -> Tensor:
    """Points ``t`` (in [0, 1]) of the way from ``start`` to ``end`` along the arc between them, per row.

    ``start`` and ``end`` are ``(N, ...)``, each row one latent (flattened for the angle); ``t`` is ``(N,)``.
    Rows whose directions are (nearly) parallel are interpolated linearly.
    """
    a, b = start.flatten(1).double(), end.flatten(1).double()
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1.0, 1.0)
    angle = torch.arccos(cosine)
    weight = t.to(a).view(-1)
    sine = torch.sin(angle)
    parallel = angle < _PARALLEL
    safe = torch.where(parallel, torch.ones_like(sine), sine)
    from_start = torch.where(parallel, 1.0 - weight, torch.sin((1.0 - weight) * angle) / safe)
    from_end = torch.where(parallel, weight, torch.sin(weight * angle) / safe)
    mixed = from_start[:, None] * a + from_end[:, None] * b
    return mixed.to(start.dtype).view(start.shape)


def loop_path(latents: Tensor, frames: int) -> Tensor:
    """``frames`` steps from each row of ``latents`` to the next (the last row to the first), end included.

    ``(N, ...)`` in, ``(N * frames, ...)`` out: rows ``i * frames`` to ``i * frames + frames - 1`` walk from
    latent ``i`` to latent ``i + 1``, so the walks of all rows chain into one loop.
    """
    if frames < 2:
        raise ValueError(f"an interpolation needs at least 2 frames, got {frames}")
    count = len(latents)
    steps = torch.linspace(0.0, 1.0, frames, dtype=torch.float64, device=latents.device)
    start = latents.repeat_interleave(frames, 0)
    end = latents.roll(-1, 0).repeat_interleave(frames, 0)
    return slerp(start, end, steps.repeat(count))
