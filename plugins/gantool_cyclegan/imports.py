"""Published CycleGAN weights that ``gantool models import`` renames into this task's generators.

``cyclegan-resnet``: the pytorch-CycleGAN-and-pix2pix repository's ``ResnetGenerator`` with instance norm
(``model.N.conv_block.M``). One file is one direction; ``--reverse FILE`` gives the BtoA generator,
otherwise both directions run the same one.
"""

from __future__ import annotations

import re

from gantool.errors import CheckpointError
from gantool.modelimport import Converted, StateDict, layer_indices


def _resnet_generator(sd: StateDict) -> tuple[StateDict, int, int]:
    """The renamed tensors, block count and width of one published ResNet generator."""
    if any(key.endswith("running_mean") for key in sd):
        raise CheckpointError("this ResNet generator uses batch norm; gantool's CycleGAN uses instance norm")
    blocks = len(layer_indices(sd, r"model\.(\d+)\.conv_block\.1\.weight"))
    dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", key) for key in sd)
    renamed = {}
    for key, value in sd.items():
        new = key.replace(".conv_block.", ".branch.")
        if dropout:  # a Dropout at index 4 shifts the second pad and conv; it does nothing at inference
            new = re.sub(r"\.branch\.6\.", ".branch.5.", new)
        renamed[new] = value
    return renamed, blocks, int(sd["model.1.weight"].shape[0])


def cyclegan_resnet(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    """One or two published generators -> ``generator_ab`` and ``generator_ba`` (transposed-conv upsampling)."""
    forward, blocks, width = _resnet_generator(sd)
    backward = _resnet_generator(reverse)[0] if reverse is not None else forward
    note = "" if reverse is not None else " (BtoA runs the same generator: only one was imported)"
    return Converted({"blocks": blocks, "width": width, "upsample": "transposed"},
                     {"generator_ab": forward, "generator_ba": backward},
                     f"CycleGAN ResNet generator, {blocks} blocks, width {width}{note}")
