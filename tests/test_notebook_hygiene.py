"""The committed notebooks are executed, deterministic-looking and small (nbval re-runs them)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LEAK = re.compile(r"((?<![\w:./])/(?:[\w.-]+/){2,}|0x[0-9a-f]{8,}|it/s\]|\d+\.\d+ ?s\b)")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_and_clean(path):
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert cells, "no code cells"
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, "a code cell has no execution count (nbval would not compare it)"
    assert counts == list(range(1, len(counts) + 1)), "cells were not executed top to bottom once"
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", "an error is committed"
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not LEAK.search(text), \
                f"output leaks a path, address, timing or progress bar: {text[:200]}"
            png = out.get("data", {}).get("image/png", "")
            assert len(png) < 400_000, "an embedded figure is over 300 kB"
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown"
    # the title carries the file's number: "# 02 · Shapley values ..." in 02_shapley_values
    assert "".join(first["source"]).startswith(f"# {path.name[:2]} · "), "title number"
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ("Goals", "Prerequisites", "CPU runtime", "References", "## Summary", "## Exercises"):
        assert heading in text, f"missing {heading!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_hidden_solutions_hide_their_outputs_too(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        jupyter = cell.get("metadata", {}).get("jupyter", {})
        if cell["cell_type"] == "code" and jupyter.get("source_hidden") and cell.get("outputs"):
            assert jupyter.get("outputs_hidden"), "a collapsed solution still shows its outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solution_cells_are_collapsed(path):
    nb = json.loads(path.read_text())
    solutions = [c for c in nb["cells"] if c["cell_type"] == "code"
                 and "".join(c["source"]).startswith("# Solutions")]
    assert solutions, "no solution cell"
    for cell in solutions:
        jupyter = cell.get("metadata", {}).get("jupyter", {})
        assert jupyter.get("source_hidden") and jupyter.get("outputs_hidden"), "solution not collapsed"
