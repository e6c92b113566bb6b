"""Store a gantool model file's float32 weights as float16, halving it; the metadata is kept as it is.

Loading needs no change: ``load_model`` builds the networks in float32 and ``load_state_dict`` converts
the stored values on copy. Used for the larger bundled models; re-measure a model after converting it
(the model cards report the converted files' scores).

    .venv/bin/python scripts/half_weights.py runs/colorize/model.safetensors \
        plugins/gantool_colorize/models/colorize.safetensors
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()

    with safe_open(str(args.source), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    halved = {key: value.half() if value.dtype == torch.float32 else value for key, value in tensors.items()}
    metadata["gantool.stored_dtype"] = "float16"
    fd, temporary = tempfile.mkstemp(dir=args.target.parent, suffix=".part")
    os.close(fd)
    try:
        save_file(halved, temporary, metadata=metadata)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would make the bundled file unreadable to others
        os.replace(temporary, args.target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    print(f"{args.target}: {args.source.stat().st_size / 1e6:.1f} MB -> {args.target.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
