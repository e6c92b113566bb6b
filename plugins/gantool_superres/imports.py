"""Published super-resolution weights that ``gantool models import`` renames into this task's networks.

The layouts, as their authors' code names them (the card lists them in ``weights_layouts``):

- ``esrgan``: BasicSR / Real-ESRGAN ``RRDBNet`` x4 (``conv_first``, ``body.N.rdbJ.convK``, ``conv_up1/2``);
- ``esrgan-old``: the original ESRGAN repository's ``RRDB_ESRGAN_x4.pth`` (``model.1.sub.N.RDBJ.convK.0``);
- ``srvgg``: Real-ESRGAN's ``SRVGGNetCompact`` with PReLU (``body.N``), x2, x3 or x4.
"""

from __future__ import annotations

import re

from gantool.errors import CheckpointError
from gantool.modelimport import Converted, StateDict, layer_indices


def esrgan(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    """BasicSR's RRDBNet names -> :class:`gantool_superres.networks.RRDBNet`'s."""
    blocks = len(layer_indices(sd, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    renamed = {}
    for key, value in sd.items():
        new = re.sub(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", lambda m: _rdb(m[1], m[2], m[3]), key)
        for old, ours in (("conv_first.", "head."), ("conv_body.", "body_conv."), ("conv_up1.", "upsample_convs.0."),
                          ("conv_up2.", "upsample_convs.1."), ("conv_hr.", "hr_conv."), ("conv_last.", "tail.")):
            if new.startswith(old):
                new = ours + new[len(old):]
        renamed[new] = value
    return _rrdb(renamed, blocks, "ESRGAN RRDBNet")


def esrgan_old(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    """The original ESRGAN repository's sequential names -> ``RRDBNet``'s."""
    blocks = len(layer_indices(sd, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"))
    renamed = {}
    for key, value in sd.items():
        new = re.sub(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", lambda m: _rdb(m[1], m[2], m[3]), key)
        new = new.replace(f"model.1.sub.{blocks}.", "body_conv.")
        for old, ours in (("model.0.", "head."), ("model.3.", "upsample_convs.0."), ("model.6.", "upsample_convs.1."),
                          ("model.8.", "hr_conv."), ("model.10.", "tail.")):
            if new.startswith(old):
                new = ours + new[len(old):]
        renamed[new] = value
    return _rrdb(renamed, blocks, "original ESRGAN RRDB")


def _rdb(block: str, rdb: str, conv: str) -> str:
    inner = f"convs.{int(conv) - 1}." if int(conv) < 5 else "fuse."
    return f"body.{block}.blocks.{int(rdb) - 1}.{inner}"


def _rrdb(renamed: StateDict, blocks: int, name: str) -> Converted:
    head = renamed.get("head.weight")
    if head is None or head.shape[1] != 3:
        channels = "?" if head is None else head.shape[1]
        raise CheckpointError(f"this {name} takes {channels} input channels (a pixel-unshuffle x1/x2 model); only "
                              "the 3-channel x4 layout is supported")
    if "upsample_convs.1.weight" not in renamed:
        raise CheckpointError(f"this {name} has one upsampling stage; only the x4 layout (two) is supported")
    width = int(head.shape[0])
    options = {"arch": "rrdb", "scale": 4, "width": width, "blocks": blocks}
    return Converted(options, {"generator": renamed}, f"{name} x4, {blocks} blocks, width {width}")


def srvgg(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    """Real-ESRGAN's SRVGGNetCompact (conv, PReLU, ..., pixel shuffle) -> :class:`CompactSR` with a nearest skip."""
    layers = layer_indices(sd, r"body\.(\d+)\.weight")
    last = layers[-1]
    width, out = int(sd["body.0.weight"].shape[0]), int(sd[f"body.{last}.weight"].shape[0])
    scale = round((out / 3) ** 0.5)
    if 3 * scale * scale != out or scale not in (2, 3, 4) or any(sd[f"body.{i}.weight"].ndim != 1
                                                                 for i in layers[1:-1:2]):
        raise CheckpointError(f"this SRVGG compact model has {out} output channels and non-PReLU activations or "
                              "a scale other than 2, 3 or 4; not supported")
    renamed = {(f"tail.{key.split('.', 2)[2]}" if key.startswith(f"body.{last}.") else key): value
               for key, value in sd.items()}
    blocks = (last - 2) // 2
    options = {"arch": "compact", "scale": scale, "width": width, "blocks": blocks, "skip": "nearest"}
    return Converted(options, {"generator": renamed},
                     f"Real-ESRGAN SRVGG compact x{scale}, {blocks} convs, width {width}")
