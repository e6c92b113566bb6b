"""``gantool models import FILE.pth``: published generator weights as a self-describing gantool model.

The file is read with ``torch.load(weights_only=True)``: tensors only, never pickled code. Its tensor names
and shapes say which published layout it is (or ``--arch`` says so), each layout is renamed into the
network a built-in task builds, and the task itself (found through the plugin registry, by name) rebuilds
that network from the options read off the shapes, loads the tensors strictly and exports the model. The
layouts, as their authors' code names them:

- ``esrgan``: BasicSR / Real-ESRGAN ``RRDBNet`` x4 (``conv_first``, ``body.N.rdbJ.convK``, ``conv_up1/2``);
- ``esrgan-old``: the original ESRGAN repository's ``RRDB_ESRGAN_x4.pth`` (``model.1.sub.N.RDBJ.convK.0``);
- ``srvgg``: Real-ESRGAN's ``SRVGGNetCompact`` with PReLU (``body.N``), x2, x3 or x4;
- ``cyclegan-resnet``: pytorch-CycleGAN-and-pix2pix ``ResnetGenerator``, instance norm
  (``model.N.conv_block.M``); becomes a ``cyclegan`` model (``--reverse`` gives the BtoA generator);
- ``pix2pix-unet``: the same repository's ``UnetGenerator`` (``model.model.1.model.3...``), batch or
  instance norm; becomes a ``pix2pix`` model.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantool.errors import CheckpointError, UsageError
from gantool.plugin.manager import PluginSystem

StateDict = dict[str, torch.Tensor]
_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict", "generator", "netG", "model")


@dataclass(frozen=True)
class Converted:
    """A published state dict renamed for one built-in task: its train options and networks' state dicts."""

    task: str
    options: dict[str, Any]
    networks: dict[str, StateDict]
    description: str


def read_state_dict(path: Path) -> StateDict:
    """The tensors of a ``.pth``/``.pt``/``.ckpt`` (``weights_only``) or ``.safetensors`` file, unwrapped.

    Raises:
        CheckpointError: missing file, pickled code, or no dict of tensors inside.
    """
    if not path.is_file():
        raise CheckpointError(f"cannot import '{path}': no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        loaded: Any = load_file(str(path))
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
            if code is None:  # not a pickle of anything ("Unsupported operand", "invalid load key")
                raise CheckpointError(f"cannot import '{path}': not a PyTorch weights file") from None
            raise CheckpointError(f"cannot import '{path}': it holds pickled Python objects ({code[1]}), not only "
                                  "tensors, and gantool never unpickles code; re-save its state_dict() with torch.save"
                                  ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"cannot import '{path}': not a PyTorch weights file ({first})") from None
    for _ in range(3):  # {"params_ema": {...}} (BasicSR), {"state_dict": {...}}, ...
        if isinstance(loaded, dict) and not _all_tensors(loaded):
            inner = next((loaded[key] for key in _WRAPPERS if isinstance(loaded.get(key), dict)), None)
            if inner is None:
                break
            loaded = inner
    if not isinstance(loaded, dict) or not loaded or not _all_tensors(loaded):
        raise CheckpointError(f"cannot import '{path}': no state dict of tensors inside")
    return {re.sub(r"^module\.", "", str(key)): value for key, value in loaded.items()}


def _all_tensors(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(value, torch.Tensor) for value in mapping.values())


# -------------------------------------------------------------------------------------------- layouts


def _layer_index(keys: StateDict, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for key in keys if (m := re.fullmatch(pattern, key))})


def _esrgan(sd: StateDict) -> Converted:
    blocks = len(_layer_index(sd, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    renamed = {}
    for key, value in sd.items():
        new = re.sub(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", lambda m: _rdb(m[1], m[2], m[3]), key)
        for old, ours in (("conv_first.", "head."), ("conv_body.", "body_conv."), ("conv_up1.", "upsample_convs.0."),
                          ("conv_up2.", "upsample_convs.1."), ("conv_hr.", "hr_conv."), ("conv_last.", "tail.")):
            if new.startswith(old):
                new = ours + new[len(old):]
        renamed[new] = value
    return _rrdb(renamed, blocks, "ESRGAN RRDBNet")


def _esrgan_old(sd: StateDict) -> Converted:
    blocks = len(_layer_index(sd, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"))
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
    return Converted("superres", options, {"generator": renamed}, f"{name} x4, {blocks} blocks, width {width}")


def _srvgg(sd: StateDict) -> Converted:
    layers = _layer_index(sd, r"body\.(\d+)\.weight")
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
    return Converted("superres", options, {"generator": renamed},
                     f"Real-ESRGAN SRVGG compact x{scale}, {blocks} convs, width {width}")


def _resnet_generator(sd: StateDict) -> tuple[StateDict, int, int]:
    if any(key.endswith("running_mean") for key in sd):
        raise CheckpointError("this ResNet generator uses batch norm; gantool's CycleGAN uses instance norm")
    blocks = len(_layer_index(sd, r"model\.(\d+)\.conv_block\.1\.weight"))
    dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", key) for key in sd)
    renamed = {}
    for key, value in sd.items():
        new = key.replace(".conv_block.", ".branch.")
        if dropout:  # a Dropout at index 4 shifts the second pad and conv; it does nothing at inference
            new = re.sub(r"\.branch\.6\.", ".branch.5.", new)
        renamed[new] = value
    return renamed, blocks, int(sd["model.1.weight"].shape[0])


def _cyclegan(sd: StateDict, reverse: StateDict | None = None) -> Converted:
    forward, blocks, width = _resnet_generator(sd)
    backward = _resnet_generator(reverse)[0] if reverse is not None else forward
    note = "" if reverse is not None else " (BtoA runs the same generator: only one was imported)"
    return Converted("cyclegan", {"blocks": blocks, "width": width},
                     {"generator_ab": forward, "generator_ba": backward},
                     f"CycleGAN ResNet generator, {blocks} blocks, width {width}{note}")


def _pix2pix(sd: StateDict) -> Converted:
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
    return Converted("pix2pix", options, {"generator": renamed},
                     f"pix2pix U-Net, depth {depth}, width {width}, {norm} norm")


#: ``--arch`` name -> (recognises the tensor names, converts).
LAYOUTS: dict[str, tuple[Callable[[StateDict], bool], Callable[[StateDict], Converted]]] = {
    "esrgan": (lambda sd: "conv_first.weight" in sd and "body.0.rdb1.conv1.weight" in sd, _esrgan),
    "esrgan-old": (lambda sd: "model.0.weight" in sd and "model.1.sub.0.RDB1.conv1.0.weight" in sd, _esrgan_old),
    "srvgg": (lambda sd: "body.0.weight" in sd and "body.1.weight" in sd and sd["body.1.weight"].ndim == 1, _srvgg),
    "cyclegan-resnet": (lambda sd: "model.1.weight" in sd and "model.10.conv_block.1.weight" in sd, _cyclegan),
    "pix2pix-unet": (lambda sd: "model.model.0.weight" in sd and "model.model.1.model.1.weight" in sd, _pix2pix),
}


def convert(sd: StateDict, arch: str | None, *, source: Path, reverse: StateDict | None = None) -> Converted:
    """Recognise (or take ``arch``) and rename; one-line ``CheckpointError``/``UsageError`` otherwise."""
    if arch is not None and arch not in LAYOUTS:
        raise UsageError(f"--arch {arch!r} is not a known layout; choose one of {', '.join(LAYOUTS)}")
    matches = [name for name, (test, _) in LAYOUTS.items() if test(sd)]
    name = arch or (matches[0] if len(matches) == 1 else None)
    if name is None:
        seen = ", ".join(f"{key} {tuple(value.shape)}" for key, value in list(sd.items())[:4])
        raise CheckpointError(f"cannot tell the architecture of '{source}' ({len(sd)} tensors: {seen} ...); pass "
                              f"--arch {'|'.join(LAYOUTS)}")
    if arch is not None and arch not in matches:
        seen = ", ".join(list(sd)[:4])
        raise CheckpointError(f"'{source}' is not a complete {arch} layout (its tensors are named {seen} ...)")
    if reverse is not None and name != "cyclegan-resnet":
        raise UsageError("--reverse is for CycleGAN ResNet generators (the BtoA direction)")
    try:
        return _cyclegan(sd, reverse) if name == "cyclegan-resnet" else LAYOUTS[name][1](sd)
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"'{source}' is not a complete {name} layout (missing {error})") from None


def import_model(system: PluginSystem, source: Path, output: Path, *, arch: str | None = None,
                 reverse: Path | None = None) -> tuple[Path, Converted]:
    """Convert ``source`` and write ``output`` through the task's own export (``gantool.command`` says how)."""
    from gantool.engine.export import export_model

    converted = convert(read_state_dict(source), arch, source=source,
                        reverse=read_state_dict(reverse) if reverse is not None else None)
    if converted.task not in system.registry:
        raise CheckpointError(f"'{source}' is a {converted.task!r} model, and no installed plugin provides that task")
    spec = system.registry.get(converted.task)
    from gantool.plugin.options import build

    task = spec.load_implementation()(spec, build(spec.train_options, converted.options))
    networks = task.build_inference_networks()
    for name, network in networks.items():
        try:
            network.load_state_dict(converted.networks[name], strict=True)
        except RuntimeError as error:
            detail = " ".join(str(error).split())[:300]
            raise CheckpointError(f"'{source}' does not fit gantool's {converted.description}: {detail}") from None
    command = f"gantool models import {source}" + (f" --reverse {reverse}" if reverse else "")
    written = export_model(output, task, networks, command=command, data=f"imported: {converted.description}")
    return written, converted
