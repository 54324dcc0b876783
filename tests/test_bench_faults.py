"""`voicebot bench faults` (issue 12's figure: the time from a fault to the caller hearing the apology) runs end to
end through typer's runner: one real-session call per fault kind with Whisper and Piper. What is asserted is the
table's shape and how each call ended (no timings: speed is measured by the benchmark, not by tests)."""

from __future__ import annotations

import math
from pathlib import Path

from typer.testing import CliRunner

from voicebot.bench_faults import KINDS
from voicebot.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def seconds(cell: str) -> float:
    """A table cell such as ``0.258 s`` as a number (nan when the bench heard nothing)."""
    value, unit = cell.split()
    assert unit == "s", cell
    return float(value)


def test_bench_faults_prints_a_row_per_fault_kind_and_every_fault_ends_in_an_apology():
    result = runner.invoke(app, ["bench", "faults", "--runs", "1", "--hang-limit", "3.5",
                                 "--config", str(ROOT / "config.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 7 and cells[1] == "fault":
            rows[cells[2]] = cells[3:6]
    for kind in KINDS:
        first = [(label, cells) for label, cells in rows.items() if label.startswith(f"{kind.name}: to first audio")]
        assert len(first) == 1, (kind.name, result.output)
        label, (median, p95, n) = first[0]
        assert math.isfinite(seconds(median)) and math.isfinite(seconds(p95)) and n == "1", label
        assert seconds(median) >= 0, label
        assert "turns kept 1/1" in label, label
        if not kind.apology:  # the store: its failure never reaches the caller, the call goes on
            assert "call went on 1/1" in label and "(greeting)" in label, label
            continue
        assert "apology 1/1" in label, label
        assert ("transfer 1/1" if kind.operator_answers else "callback 1/1") in label, label
        if kind.hangs:  # the hold line (or the filler) first, then the apology at the stage's limit
            assert "(hold line)" in label or "(filler)" in label, label
            apology = rows[f"{kind.name}: to the apology (stage limit 3.5 s)"]
            assert math.isfinite(seconds(apology[0])) and apology[2] == "1", (kind.name, apology)
        else:
            assert "(apology)" in label, label
