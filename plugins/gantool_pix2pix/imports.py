"""Published pix2pix weights that ``gantool models import`` renames into this task's generator.

``pix2pix-unet``: the pytorch-CycleGAN-and-pix2pix repository's ``UnetGenerator``, nested
``model.model.1.model.3...`` blocks, batch or instance norm.
"""

from __future__ import annotations

import torch

from gantool.errors import CheckpointError
from gantool.modelimport import Converted, StateDict


def pix2pix_unet(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    """The published nested U-Net names -> :class:`gantool.lib.nets.unet.UNet`'s, depth read off the nesting."""
    prefixes = ["model.model."]
    while any(key.startswith(prefixes[-1] + ("1." if len(prefixes) == 1 else "3.") + "model.") for key in sd):
        prefixes.append(prefixes[-1] + ("1." if len(prefixes) == 1 else "3.") + "model.")
    depth = len(prefixes)
    norm = "batch" if any(key.endswith("running_mean") for key in sd) else "instance"
    mapping: dict[str, str] = {prefixes[0] + "0.": "down.0.0.",
                               prefixes[0] + "3.": f"up.{depth - 1}.1."}
    for level in range(1, depth):
        up = depth - 1 - level
        inner = level == depth - 1
        mapping[prefixes[level] + "1."] = f"down.{level}.1."
        if inner:
            mapping[prefixes[level] + "3."] = f"up.{up}.1."
            mapping[prefixes[level] + "4."] = f"up.{up}.2."
        else:
            mapping[prefixes[level] + "2."] = f"down.{level}.2."
            mapping[prefixes[level] + "5."] = f"up.{up}.1."
            mapping[prefixes[level] + "6."] = f"up.{up}.2."
    renamed = {}
    for key, value in sd.items():
        head, _, leaf = key.rpartition(".")
        target = mapping.get(head + ".")
        if target is None:
            raise CheckpointError(f"unexpected tensor {key!r} in a U-Net generator of depth {depth}")
        renamed[target + leaf] = value
    for level in (0, depth - 1):  # gantool's first and innermost down convs always have a bias
        weight = renamed[f"down.{level}.{0 if level == 0 else 1}.weight"]
        renamed.setdefault(f"down.{level}.{0 if level == 0 else 1}.bias", torch.zeros(weight.shape[0]))
    width = int(sd[prefixes[0] + "0.weight"].shape[0])
    crop = 2**depth * -(-256 // 2**depth)  # the training default, a multiple of 2**depth
    options = {"width": width, "depth": depth, "norm": norm, "crop": crop}
    return Converted(options, {"generator": renamed}, f"pix2pix U-Net, depth {depth}, width {width}, {norm} norm")
