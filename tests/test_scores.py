"""gantool.lib.metrics: the pieces every ``Task.evaluate`` shares, and the table the CLI prints."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch

from gantool.cli.table import Column, print_table
from gantool.lib.metrics import MEAN_ROW, mean_row, psnr, rows_as_json, ssim, to_8bit


@dataclass
class Row:
    image: str
    score: float
    optional: float | None = None


def test_psnr_matches_the_formula_and_is_infinite_for_identical_images() -> None:
    target = torch.zeros(2, 3, 4, 4)
    prediction = target.clone()
    prediction[0] += 0.1  # MSE 0.01 -> 20 dB
    values = psnr(prediction, target)
    assert values[0].item() == pytest.approx(20.0) and math.isinf(values[1].item())


def test_ssim_is_one_for_identical_images_and_lower_otherwise() -> None:
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert ssim(image, image).item() == pytest.approx(1.0)
    assert ssim(image, 1 - image).item() < 0.5


def test_to_8bit_rounds_and_clamps() -> None:
    assert to_8bit(torch.tensor([0.5, 1.2, -0.1])).tolist() == pytest.approx([128 / 255, 1.0, 0.0])


def test_mean_row_skips_missing_cells_and_keeps_the_row_type() -> None:
    rows = [Row("a", 1.0, None), Row("b", 3.0, 5.0)]
    mean = mean_row(rows)
    assert mean == Row(MEAN_ROW, 2.0, 5.0)
    assert mean_row([Row("a", 1.0)]).optional is None
    with pytest.raises(ValueError):
        mean_row([])


def test_rows_as_json_writes_infinity_as_a_string() -> None:
    data = json.loads(rows_as_json([Row("a", math.inf)]))
    assert data == [{"image": "a", "score": "inf", "optional": None}]


def test_mean_row_of_dict_rows_is_a_dict() -> None:
    rows = [{"image": "a", "score": 1.0, "optional": None}, {"image": "b", "score": 3.0, "optional": 5.0}]
    assert mean_row(rows) == {"image": MEAN_ROW, "score": 2.0, "optional": 5.0}
    assert json.loads(rows_as_json(rows))[1] == rows[1]


def test_print_rows_leaves_out_columns_never_measured(capsys: pytest.CaptureFixture[str]) -> None:
    from gantool.cli.table import print_rows
    from gantool.plugin.evaluation import EvalColumn

    rows = [Row("a", 1.0), Row("b", 3.0)]
    columns = [EvalColumn(name="score", header="Score"), EvalColumn(name="optional", header="Other")]
    print_rows([*rows, mean_row(rows)], columns, title="t")
    out = capsys.readouterr().out
    assert "Score" in out and "Other" not in out and "2.00" in out and MEAN_ROW in out


def test_print_table_is_deprecated_but_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [Row("a", 1.0), Row("b", 3.0)]
    with pytest.warns(DeprecationWarning, match="print_table is deprecated"):
        print_table([*rows, mean_row(rows)], [Column("Score", "score"), Column("Other", "optional")], title="t")
    out = capsys.readouterr().out
    assert "Score" in out and "Other" not in out and "2.00" in out and MEAN_ROW in out


def test_a_wide_table_into_a_file_keeps_every_number_whole(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """Redirected output is not a terminal: rich would squeeze the table into 80 columns and cut numbers."""
    from gantool.cli.table import print_rows
    from gantool.plugin.evaluation import EvalColumn

    monkeypatch.delenv("COLUMNS", raising=False)
    names = [f"metric_{index}" for index in range(12)]
    rows = [{"image": "a rather long row label", **{name: 123456.789 + index for index, name in enumerate(names)}}]
    print_rows(rows, [EvalColumn(name=name, header=f"Long header {name}", format=".3f") for name in names], title="t")
    out = capsys.readouterr().out
    assert all(f"{123456.789 + index:.3f}" in out for index in range(12)) and "…" not in out
