"""``gantool export MODEL --format onnx``: one command; the work is in :mod:`gantool.engine.onnxexport`."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from gantool.cli import launch
from gantool.cli.command import TOOLS_PANEL
from gantool.errors import UsageError
from gantool.plugin.manager import PluginSystem
from gantool.plugin.options import build, coerce


def add_export_command(app: typer.Typer, system: PluginSystem) -> None:
    @app.command("export", rich_help_panel=TOOLS_PANEL)
    def export(
        model: Annotated[str, typer.Argument(help="Model name (`gantool models list`) or .safetensors path.",
                                             show_default=False)],
        fmt: Annotated[Literal["onnx"], typer.Option("--format", help="Target format (onnx only, for now).")] = "onnx",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: MODEL.onnx "
                                                    "here).")] = None,
        option: Annotated[list[str] | None, typer.Option("--set", help="A task option baked into the graph, "
                                                         "KEY=VALUE (e.g. direction=BtoA); repeatable.")] = None,
        tolerance: Annotated[float, typer.Option(help="Largest max-abs difference from PyTorch that passes the "
                                                 "parity check (values in [0, 1]).")] = 1e-3,
    ) -> None:
        """Export an image model to ONNX (dynamic height and width), then check it against PyTorch."""
        from gantool.api import resolve_model
        from gantool.cli.report import run_reporting_errors

        def body() -> None:
            assert fmt == "onnx"  # Typer refuses any other value
            spec, path = resolve_model(system, model)
            target = output or Path(f"{path.stem}.onnx")
            report = launch.export_onnx(spec=spec, model_path=path, output=target,
                                        task_options=task_options(spec.infer_options, option or []),
                                        tolerance=tolerance)
            for item in report:
                typer.echo(f"parity {item.height}x{item.width}: max abs error {item.max_abs:.2e}, "
                           f"PSNR {item.psnr:.1f} dB (tolerance {tolerance:.0e})")
            inputs = ", ".join(f"'{item.name}' (1, {item.channels}, H, W)" for item in spec.inputs)
            typer.echo(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB): input {inputs} float32 in [0, 1], "
                       "output 'output'; what callers do around the graph is in its metadata "
                       "(gantool.onnx.outside_graph)")

        run_reporting_errors(body)


def task_options(option_class: type | None, pairs: list[str]) -> Any:
    """The task's inference options from ``KEY=VALUE`` strings (flag names with - or _)."""
    if option_class is None:
        if pairs:
            raise UsageError("this task has no options to --set")
        return None
    hints = typing.get_type_hints(option_class)
    fields = {f.name for f in dataclasses.fields(option_class) if f.init}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or key not in fields:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        try:
            values[key] = coerce(raw, hints[key])
        except ValueError as error:
            raise UsageError(f"--set {pair!r}: {error}") from None
    return build(option_class, values)
