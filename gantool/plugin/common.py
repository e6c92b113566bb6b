"""The options every task shares: runtime, inference (batch pipeline + tiling), sampling, training and eval.

These dataclasses become CLI flags the same way a task's own option dataclasses do (see
``gantool.plugin.options``), and they are what the engine receives. A task's own option names must not clash
with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gantool.plugin.options import flag

Precision = Literal["auto", "fp32", "bf16", "fp16"]
LrSchedule = Literal["constant", "linear", "cosine"]


@dataclass(kw_only=True)
class RuntimeOptions:
    """Where and how tensors are computed."""

    device: str = flag("auto", "auto, cpu, cuda, cuda:N or mps.", panel="Runtime")
    precision: Precision = flag("auto", "auto: bf16 on CUDA that supports it, else fp16; fp32 on CPU. bf16 on a "
                                "CPU with AVX512-BF16 or AMX: ~1.9x faster inference, ~0.01 dB off.",
                                panel="Runtime")
    compile: bool = flag(False, "Compile the networks with torch.compile (slower start, faster steps).",
                         panel="Runtime")


@dataclass(kw_only=True)
class InferenceOptions(RuntimeOptions):
    """Flags of every image-to-image verb (``upscale``, ``colorize``, ``translate`` ...)."""

    output: Path | None = flag(None, "Output folder (default: next to each input, with --suffix).", short="-o")
    model: str | None = flag(None, "Model name (see `gantool models list`) or path to a .safetensors file.",
                             short="-m")
    tile: str = flag("auto", "Tile size in input pixels, 0 for none, or auto (from free memory).",
                     panel="Tiling")
    tile_overlap: int = flag(16, "Overlap between tiles in input pixels (feathered).", panel="Tiling", min=0)
    recursive: bool = flag(False, "Descend into sub-folders of input folders (mirrored in the output).",
                           short="-r", panel="Batch")
    suffix: str = flag("", "Text added to each output file name, e.g. _x4 (default without -o: _VERB, "
                       "as in photo_upscale.jpg).", panel="Batch")
    ext: str | None = flag(None, "Output format: png, jpg, webp, tif or bmp (default: the input's).",
                           panel="Batch")
    quality: int = flag(95, "JPEG/WebP quality.", panel="Batch", min=1, max=100)
    overwrite: bool = flag(False, "Recompute and replace existing outputs. Without it, outputs made with other "
                           "parameters or not by gantool are kept; only this command's own outputs of changed "
                           "inputs are refreshed.", flags="--overwrite/--skip-existing", panel="Batch")
    shard: str | None = flag(None, "Process only part i of N of the inputs, as i/N (1-based).", panel="Batch")
    workers: int = flag(2, "Decode worker threads.", panel="Batch", min=0)


@dataclass(kw_only=True)
class SampleOptions(RuntimeOptions):
    """Flags of every generation verb (tasks of kind ``sample``, such as ``gantool generate``)."""

    output: Path = flag(Path("samples"), "Output folder (also holds the journal that lets a rerun resume).",
                        short="-o")
    model: str | None = flag(None, "Model name (see `gantool models list`) or path to a .safetensors file.",
                             short="-m")
    count: int = flag(16, "How many images to generate (images 0 to N-1 of the seed).", short="-n", min=1)
    seed: int = flag(0, "Random seed: image i of a seed is always the same, whatever -n is.")
    label: str | None = flag(None, "Class to generate, by name or index, for class-conditional models "
                             "(default: the model picks).", flags="--class")
    truncation: float | None = flag(None, "Truncation in (0, 1]: lower is more typical, less varied "
                                    "(models that support it; the task defines it).")
    grid: bool = flag(False, "Also write one grid image of all the samples (<task>-seed<S>-grid).")
    ext: str = flag("png", "Output format: png, jpg, webp, tif or bmp.")
    overwrite: bool = flag(False, "Recompute and replace existing files (without it, files made with other "
                           "parameters or not by gantool are kept).", flags="--overwrite/--skip-existing")


@dataclass(kw_only=True)
class TrainingOptions(RuntimeOptions):
    """Flags of ``gantool train TASK``; the engine's training loop reads these."""

    data: Path | None = flag(None, "Training data folder (layout depends on the task).")
    steps: int = flag(10_000, "Total optimisation steps.", panel="Training", min=1)
    batch_size: int = flag(16, "Images per step (per process under torchrun).", panel="Training", min=1)
    num_workers: int = flag(2, "Data loading worker processes.", panel="Training", min=0)
    run_dir: Path | None = flag(None, "Run folder for checkpoints, logs and samples (default runs/TASK).",
                                panel="Training")
    seed: int = flag(0, "Random seed (each torchrun rank adds its rank).", panel="Training")
    resume: str | None = flag(None, "auto (newest checkpoint in the run folder) or a checkpoint path.",
                              panel="Training")
    init: str | None = flag(None, "Start from a model's weights (a name from `gantool models list` or a .safetensors "
                            "file) instead of a fresh draw: fine-tuning. Its networks are loaded, the others "
                            "(critics) start fresh. A run's checkpoint folder loads every network in it, critics "
                            "too (only the optimizer starts fresh). Ignored when the run resumes from a checkpoint.",
                            panel="Training")
    lr_schedule: LrSchedule = flag("constant", "Learning-rate schedule after warmup.", panel="Optimisation")
    decay_start: float = flag(0.5, "Fraction of steps after which the linear schedule starts decaying.",
                              panel="Optimisation", min=0.0, max=1.0)
    warmup_steps: int = flag(0, "Linear learning-rate warmup steps.", panel="Optimisation", min=0)
    grad_clip: float | None = flag(None, "Clip gradient norm of every network to this value.",
                                   panel="Optimisation")
    ema_decay: float = flag(0.999, "EMA decay of the inference networks (0 disables EMA).",
                            panel="Optimisation", min=0.0, max=1.0)
    log_every: int = flag(50, "Log losses every N steps.", panel="Output", min=1)
    sample_every: int = flag(1000, "Write a sample grid every N steps (0: never).", panel="Output", min=0)
    checkpoint_every: int = flag(1000, "Save a checkpoint every N steps.", panel="Output", min=1)
    keep_checkpoints: int = flag(3, "How many recent checkpoints to keep.", panel="Output", min=1)
    export: Path | None = flag(None, "Write the trained inference networks to this .safetensors file at the end.",
                               panel="Output")
    memory_check: bool = flag(True, "Before training, measure one step and refuse a --batch-size that would not "
                              "fit in free memory.", panel="Training")


@dataclass(kw_only=True)
class EvalOptions:
    """Flags of every ``gantool eval TASK`` (the task's own come from its ``eval_options``).

    No ``--precision``: scores are measured in fp32, so that they do not depend on the device.
    """

    data: Path | None = flag(None, "Evaluation folder (its layout depends on the task, see above) or the name of "
                             "a dataset under the data root.")
    model: str | None = flag(None, "Model name (see `gantool models list`) or path to a .safetensors file "
                             "(default: the task's bundled model; tasks that measure baselines measure only "
                             "those without it).", short="-m")
    device: str = flag("auto", "auto, cpu, cuda, cuda:N or mps.", panel="Runtime")
    json: bool = flag(False, "Print the rows as JSON on stdout instead of the table.")
