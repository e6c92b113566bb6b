"""Run by ``torchrun --nproc-per-node 2`` from test_training.py: train the toy task, dump each rank's weights."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel

from gantool.engine.checkpoint import flatten
from gantool.engine.training import Trainer
from gantool.testing import TOY_SPEC, ToyTrainOptions, tiny_training_options


def main(run_dir: Path) -> None:
    options = tiny_training_options(run_dir, steps=4, checkpoint_every=4, sample_every=4)
    trainer = Trainer(TOY_SPEC, options, ToyTrainOptions(), command="torchrun test", progress=False)
    trainer.fit()
    # fit() must let go of its DDP wrappers: their reducers hold the gloo group, and a group freed only at
    # interpreter exit can abort the process ("terminate called without an active exception").
    gc.collect()
    alive = [obj for obj in gc.get_objects() if isinstance(obj, DistributedDataParallel)]
    assert not alive, f"{len(alive)} DistributedDataParallel wrappers outlived Trainer.fit()"
    networks = {name: net.state_dict() for name, net in trainer.networks.items()}
    save_file(flatten(networks), str(run_dir / f"rank{trainer.runtime.rank}.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
