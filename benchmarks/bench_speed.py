"""Benchmark: the everyday path in one run, as ratios (issue 17): first output, folder memory, reduced precision.

Usage::

    .venv/bin/python benchmarks/bench_speed.py                  # every part, ~4 minutes on 2 idle cores
    .venv/bin/python benchmarks/bench_speed.py --parts first,folder --repeats 3
    .venv/bin/python benchmarks/bench_speed.py --parts precision --precision bf16
    .venv/bin/python benchmarks/bench_speed.py --parts precision --device cuda --with-compile --repeats 20 \
        --data ../shared/data                                   # on a GPU, about half a minute

Parts (``--parts``, comma-separated; default all):

- ``tile``: runs ``bench_tile_plan.py`` (``--tile auto`` against ``--tile 0`` on a 768x512 photo).
- ``first``: ``gantool upscale`` of one 768x512 Kodak photo, the real command in a fresh process, its wall
  time split into **import** (process start until the model starts loading: Python, the CLI, torch),
  **load** (model file, networks, ``--tile auto`` plan), **compute** (``process``), **write** (encode and
  atomic write) and the **rest** (decode, batch planning, exit). The split comes from wrapping those
  functions in the child process (an import hook, so nothing is imported earlier than the command does).
- ``folder``: peak resident memory (``ru_maxrss``) of ``gantool upscale`` on a folder of ``--images``
  Kodak photos against one photo, each its own process; the ratio is folder peak / single peak.
- ``precision``: the bundled ``superres-x4`` through the engine's processor, ``--precision fp32`` against
  the reduced one (``bf16`` on a CPU with AVX512-BF16/AMX): time on a 768x512 photo (the variants take
  turns, medians) and Y-PSNR on Set5 x4 (8-bit output, border 4, HR cropped to the output), as a ratio and a
  difference. ``--with-compile`` also times the reduced precision under ``--compile`` (after its first image).
  With ``--device cuda`` (this part only; the others always use the CPU) it is a table instead: fp32, bf16,
  fp16 and, with ``--with-compile``, ``PRECISION+compile``, each through ``Runtime.from_options`` and
  ``make_processor`` (autocast, channels_last weights, TF32 for fp32), against the **plain way**: the same
  generator called directly in fp32 NCHW under ``torch.no_grad`` on the whole photo (host array in and out,
  and once more with input and output left on the GPU). Speed-ups are against engine fp32; timings are
  synchronized; a variant that fails prints one line and is left out.

Every timed part alternates its variants and takes medians over ``--repeats``; on a shared machine the
load average printed at the start and the end says how busy it was. Data (Kodak24, Set5): ``--data``, by
default a ``shared/data`` folder next to the repository or next to its parent; the precision part reads
only ``photos/Kodak24/kodim01.png`` and ``sr/Set5/{HR,LR_bicubic/X4}``. Figures: docs/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = next((p for p in (ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data") if p.is_dir()),
            Path("shared/data"))
KODAK = DATA / "photos" / "Kodak24"
SET5 = DATA / "sr" / "Set5"

# Run in the child: time the phases of the real command by wrapping functions as their modules load.
_CHILD = r"""
import importlib.abc, importlib.util, json, resource, runpy, sys, time
marks = {"spawn": float(sys.argv[1])}
spans = {}
def timed(name, fn):
    def wrapper(*args, **kwargs):
        start = time.time()
        marks.setdefault(name + "_start", start)
        try:
            return fn(*args, **kwargs)
        finally:
            spans[name] = spans.get(name, 0.0) + time.time() - start
    return wrapper
def patch(module):
    if module.__name__ == "gantool.engine.inference":
        module.load_for_inference = timed("load", module.load_for_inference)
        make = module.make_processor
        module.make_processor = timed("plan", lambda *a, **k: timed("compute", make(*a, **k)))
    elif module.__name__ == "gantool.image.io":
        module.write_image = timed("write", module.write_image)
        module.read_image = timed("decode", module.read_image)
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in ("gantool.engine.inference", "gantool.image.io"):
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
sys.argv = ["gantool"] + sys.argv[2:]
code = 0
try:
    runpy.run_module("gantool", run_name="__main__")
except SystemExit as exit:
    code = exit.code or 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("BENCH " + json.dumps({"marks": marks, "spans": spans, "peak": peak, "code": code, "end": time.time()}))
sys.exit(code)
"""


def run_command(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``gantool ARGS`` in a fresh process; its phase marks, spans, peak memory and wall time."""
    spawn = time.time()
    done = subprocess.run([sys.executable, "-c", _CHILD, repr(spawn), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    wall = time.time() - spawn
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not lines:
        raise SystemExit(f"gantool {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1][6:])
    result["wall"] = wall
    return result


def upscale_args(inputs: list[Path] | Path, output: Path, *extra: str) -> list[str]:
    sources = [str(p) for p in inputs] if isinstance(inputs, list) else [str(inputs)]
    return ["upscale", *sources, "-o", str(output), "--overwrite", "--device", "cpu", *extra]


def part_first(repeats: int) -> None:
    photo = KODAK / "kodim01.png"
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        run_command(upscale_args(photo, Path(folder)))  # warm the file cache
        for _ in range(repeats):
            result = run_command(upscale_args(photo, Path(folder)))
            spans, marks = result["spans"], result["marks"]
            load = spans.get("load", 0.0) + spans.get("plan", 0.0)
            row = {"wall": result["wall"], "import": marks["load_start"] - marks["spawn"], "load": load,
                   "compute": spans.get("compute", 0.0), "write": spans.get("write", 0.0),
                   "decode": spans.get("decode", 0.0), "plan": spans.get("plan", 0.0),
                   "exit": result["wall"] - (result["end"] - marks["spawn"])}
            row["rest"] = row["wall"] - row["import"] - load - row["compute"] - row["write"]
            rows.append(row)
    median = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    print(f"\n[first] gantool upscale {photo.name} (768x512 -> 3072x2048), fresh process, median of {repeats}")
    for key in ("import", "load", "compute", "write", "rest"):
        extra = {"load": f" (of which the --tile auto plan {median['plan']:.2f} s)",
                 "rest": f" (decode {median['decode']:.2f} s, interpreter exit {median['exit']:.2f} s)"}.get(key, "")
        print(f"  {key:8s} {median[key]:6.2f} s  {median[key] / median['wall']:5.1%} of wall{extra}")
    print(f"  wall     {median['wall']:6.2f} s")


def part_folder(images: int, repeats: int) -> None:
    photos = sorted(KODAK.glob("*.png"))[:images]
    singles, folders = [], []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work, "in")
        folder.mkdir()
        for photo in photos:
            os.symlink(photo, folder / photo.name)
        for _ in range(repeats):  # taking turns
            singles.append(run_command(upscale_args(photos[0], Path(work, "one"))))
            folders.append(run_command(upscale_args(folder, Path(work, "many"))))
    single = statistics.median(r["peak"] for r in singles)
    many = statistics.median(r["peak"] for r in folders)
    wall = statistics.median(r["wall"] for r in folders)
    print(f"\n[folder] peak memory (ru_maxrss) of gantool upscale, {len(photos)} Kodak photos against one, "
          f"fresh processes taking turns, median of {repeats}")
    runs = ", ".join(f"{r['peak'] / 2**30:.2f}" for r in singles + folders)
    print(f"  one photo  {single / 2**30:6.2f} GiB")
    print(f"  folder     {many / 2**30:6.2f} GiB   {wall / len(photos):.2f} s per photo")
    print(f"  ratio      {many / single:6.2f} (folder peak / single peak; all runs, singles first: {runs} GiB)")


def part_precision(precision: str, repeats: int, with_compile: bool = False) -> None:
    import numpy as np
    import torch

    from gantool.engine.export import load_model
    from gantool.engine.processor import make_processor, prepare_networks
    from gantool.engine.runtime import Runtime
    from gantool.image.io import Image, read_image
    from gantool.plugin.manager import build_plugin_system
    from gantool.weights import find_model_file
    from gantool_superres.metrics import psnr_y

    spec = build_plugin_system().registry.get("superres")
    path = find_model_file("superres-x4")
    assert path is not None, "bundled superres-x4 not found"
    processors = {}
    for name in ("fp32", precision, *([f"{precision}+compile"] if with_compile else [])):
        runtime = Runtime.from_options(argparse.Namespace(device="cpu", precision=name.split("+")[0],
                                                          compile=name.endswith("+compile")), distributed=False)
        model = load_model(path, spec)
        processors[name] = make_processor(model.task, prepare_networks(model.networks, runtime), None,
                                          scale=model.scale, tile=0, overlap=16, runtime=runtime)
    photo = read_image(KODAK / "kodim01.png")
    times: dict[str, list[float]] = {name: [] for name in processors}
    for name, run in processors.items():
        start = time.perf_counter()
        run(photo)  # warm-up (and compilation)
        if name.endswith("+compile"):
            print(f"  ({name}: the first image took {time.perf_counter() - start:.1f} s, compiling)")
    for _ in range(repeats):
        for name, run in processors.items():
            start = time.perf_counter()
            run(photo)
            times[name].append(time.perf_counter() - start)
    scores: dict[str, list[float]] = {name: [] for name in processors}
    for hr_path in sorted((SET5 / "HR").glob("*.png")):
        lr = read_image(SET5 / "LR_bicubic" / "X4" / hr_path.name)
        hr = read_image(hr_path).rgb()
        for name, run in processors.items():
            if name.endswith("+compile"):
                continue  # bf16's numbers; each new Set5 size would recompile
            sr = np.round(run(Image(lr.rgb())).color.clip(0, 1) * 255) / 255  # the 8-bit file a user gets
            sr_t = torch.from_numpy(np.ascontiguousarray(sr)).permute(2, 0, 1)[None]
            hr_t = torch.from_numpy(np.ascontiguousarray(hr[: sr.shape[0], : sr.shape[1]])).permute(2, 0, 1)[None]
            scores[name].append(float(psnr_y(sr_t.float(), hr_t, border=4)))
    fp32_time, low_time = statistics.median(times["fp32"]), statistics.median(times[precision])
    fp32_psnr, low_psnr = statistics.mean(scores["fp32"]), statistics.mean(scores[precision])
    print(f"\n[precision] superres-x4 on the CPU ({torch.get_num_threads()} threads), fp32 against {precision}")
    print(f"  768x512 upscale  fp32 {fp32_time:.3f} s   {precision} {low_time:.3f} s   "
          f"speed-up {fp32_time / low_time:.2f}x (median of {repeats}, alternating)")
    print(f"  Set5 x4 Y-PSNR   fp32 {fp32_psnr:.3f} dB   {precision} {low_psnr:.3f} dB   "
          f"difference {low_psnr - fp32_psnr:+.3f} dB (target: 2x at no more than 0.05 dB loss)")
    if with_compile:
        compiled = statistics.median(times[f"{precision}+compile"])
        print(f"  with --compile   {precision} {compiled:.3f} s   speed-up {fp32_time / compiled:.2f}x against fp32 "
              "(after the first image)")


def _sync(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _short(error: BaseException) -> str:
    """One line for a failed variant: the exception's type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def part_precision_cuda(precision: str, repeats: int, with_compile: bool = False, device: str = "cuda") -> None:
    """``part_precision`` on CUDA: fp32, bf16, fp16 (and ``PRECISION+compile``) through the engine, and the plain way.

    Every variant that fails (unsupported dtype, compile error, out of memory) prints one line and is left
    out; the others go on. Each timing is bracketed by ``torch.cuda.synchronize()``. ``device`` exists so
    the code path can be tried on the CPU (with ``torch.cuda`` faked); leave it at ``cuda``.
    """
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"[precision] --device cuda: CUDA is not available here (torch {torch.__version__}, "
                         f"CUDA build {torch.version.cuda or 'none'}); use --device cpu")
    from gantool.engine.export import load_model
    from gantool.engine.processor import make_processor, prepare_networks
    from gantool.engine.runtime import Runtime
    from gantool.image.io import Image, read_image
    from gantool.image.tensor import to_tensor
    from gantool.plugin.manager import build_plugin_system
    from gantool.weights import find_model_file
    from gantool_superres.metrics import psnr_y

    print(f"\n[precision] superres-x4 on {torch.cuda.get_device_name()} (torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}), through the engine's processor (tile 0, one pass on the whole image)")
    spec = build_plugin_system().registry.get("superres")
    path = find_model_file("superres-x4")
    assert path is not None, "bundled superres-x4 not found"
    photo = read_image(KODAK / "kodim01.png")
    runs: dict[str, Any] = {}
    names = ["fp32", "bf16", "fp16", *([f"{precision}+compile"] if with_compile else [])]
    for name in names:
        try:
            runtime = Runtime.from_options(argparse.Namespace(device=device, precision=name.split("+")[0],
                                                              compile=name.endswith("+compile")), distributed=False)
            model = load_model(path, spec)
            run = make_processor(model.task, prepare_networks(model.networks, runtime), None, scale=model.scale,
                                 tile=0, overlap=16, runtime=runtime)
            _sync(torch)
            start = time.perf_counter()
            run(photo)  # warm-up (and compilation)
            _sync(torch)
            if name.endswith("+compile"):
                print(f"  ({name}: the first image took {time.perf_counter() - start:.1f} s, compiling)")
            runs[f"engine {name}"] = run
        except Exception as error:  # one line per failed variant, then the next one
            print(f"  engine {name}: failed, left out ({_short(error)})")

    # The plain way: the same network in fp32 NCHW, no engine (no autocast, no channels_last, no tiling code).
    try:
        plain = load_model(path, spec).networks["generator"].to(device).eval()

        def plain_run(picture: Image) -> Any:  # host array in, host array out, as the engine's processor
            with torch.no_grad():
                return plain(to_tensor(picture.rgb()).to(device)).clamp_(0, 1).cpu().numpy()

        on_device = to_tensor(photo.rgb()).to(device)

        def plain_forward(_: Image) -> Any:
            with torch.no_grad():
                return plain(on_device).clamp_(0, 1)

        for run in (plain_run, plain_forward):
            run(photo)
        _sync(torch)
        runs["plain fp32"] = plain_run
        runs["plain fp32, forward only"] = plain_forward
    except Exception as error:
        print(f"  plain fp32: failed, left out ({_short(error)})")

    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):  # taking turns
        for name in list(times):
            try:
                _sync(torch)
                start = time.perf_counter()
                runs[name](photo)
                _sync(torch)
                times[name].append(time.perf_counter() - start)
            except Exception as error:
                print(f"  {name}: failed while timed, left out ({_short(error)})")
                del times[name]

    scores: dict[str, list[float]] = {name: [] for name in times if name != "plain fp32, forward only"
                                      and not name.endswith("+compile")}  # each new Set5 size would recompile
    for hr_path in sorted((SET5 / "HR").glob("*.png")):
        lr = read_image(SET5 / "LR_bicubic" / "X4" / hr_path.name)
        hr = read_image(hr_path).rgb()
        for name in list(scores):
            try:
                out = runs[name](Image(lr.rgb()))  # an Image (engine) or a (1, 3, H, W) array (plain)
                out = out.color if isinstance(out, Image) else out[0].transpose(1, 2, 0)
                sr = np.round(out.clip(0, 1) * 255) / 255  # the 8-bit file a user gets
                sr_t = torch.from_numpy(np.ascontiguousarray(sr)).permute(2, 0, 1)[None]
                hr_t = torch.from_numpy(np.ascontiguousarray(hr[: sr.shape[0], : sr.shape[1]])).permute(2, 0, 1)[None]
                scores[name].append(float(psnr_y(sr_t.float(), hr_t, border=4)))
            except Exception as error:
                print(f"  {name}: Set5 failed, PSNR left out ({_short(error)})")
                del scores[name]

    base = statistics.median(times["engine fp32"]) if times.get("engine fp32") else None
    base_psnr = statistics.mean(scores["engine fp32"]) if scores.get("engine fp32") else None
    print(f"  768x512 -> 3072x2048 (kodim01), median of {repeats}, variants taking turns, synchronized; "
          "speed-up = engine fp32 time / variant time")
    print(f"  {'variant':<28} {'time':>9} {'speed-up':>9} {'Set5 Y-PSNR':>12} {'vs fp32':>9}")
    for name, values in times.items():
        if not values:
            continue
        median = statistics.median(values)
        ratio = f"{base / median:8.2f}x" if base else f"{'-':>9}"
        psnr = f"{statistics.mean(scores[name]):9.3f} dB" if scores.get(name) else f"{'-':>12}"
        delta = (f"{statistics.mean(scores[name]) - base_psnr:+6.3f} dB"
                 if scores.get(name) and base_psnr is not None else f"{'-':>9}")
        print(f"  {name:<28} {median * 1000:6.1f} ms {ratio} {psnr} {delta}")
    if base and times.get("plain fp32"):
        print(f"  engine overhead: engine fp32 / plain fp32 = {base / statistics.median(times['plain fp32']):.2f} "
              "(above 1: the engine is slower; both from host arrays to host arrays, TF32 allowed for both as the "
              "runtime sets it; 'forward only' keeps input and output on the GPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="tile,first,folder,precision")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=8, help="photos in the folder run (default 8)")
    parser.add_argument("--precision", default="bf16", help="the reduced precision compared with fp32")
    parser.add_argument("--with-compile", action="store_true", help="also time the reduced precision with --compile")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the precision part runs (the other parts always use the CPU)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding photos/Kodak24 and sr/Set5")
    args = parser.parse_args()
    global KODAK, SET5
    KODAK, SET5 = args.data / "photos" / "Kodak24", args.data / "sr" / "Set5"
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    for part in parts:
        if part == "tile":
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_tile_plan.py"), "--rounds",
                            str(args.repeats)], check=True)
        elif part == "first":
            part_first(args.repeats)
        elif part == "folder":
            part_folder(args.images, max(1, min(args.repeats, 3)))
        elif part == "precision" and args.device == "cuda":
            part_precision_cuda(args.precision, args.repeats, args.with_compile)
        elif part == "precision":
            part_precision(args.precision, args.repeats, args.with_compile)
        else:
            raise SystemExit(f"unknown part {part!r}; choose from tile, first, folder, precision")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
