"""para-eval-matrix's models x cells table (markdown and PNG) from finished rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from para_ros.core.stats import wilson_interval
from para_ros.sim.matrix import pivot, plot_table, write_table


def _row(model: str, setting: str, label: str, place: int, n: int) -> dict:
    summary = {"n": n, "PLACE": place, "GRASP": 0, "MISS": n - place}
    summary["ci95"] = list(wilson_interval(place, n))
    summary["success_rate"] = place / n
    return {"model": model, "setting": setting, "label": label, "x": None, "summary": summary,
            "refused": 0}  # fmt: skip


ROWS = [
    _row("para_dino_kv", "fresh", "fresh layouts", 15, 20),
    _row("coord", "fresh", "fresh layouts", 0, 20),
    _row("para_dino_kv", "position", "half right", 7, 25),
]


def test_pivot_has_one_line_per_model_and_says_what_was_not_run():
    lines = pivot(ROWS).splitlines()
    assert lines[0] == "| model | fresh layouts | half right |"
    assert lines[2] == "| para_dino_kv | 15/20 = 75% [53–89%] | 7/25 = 28% [14–48%] |"
    assert lines[3] == "| coord | 0/20 = 0% [0–16%] | not run |"
    assert len(lines) == 4


def test_table_png_colours_cells_by_rate_and_greys_the_missing(tmp_path):
    from PIL import Image

    path = plot_table(ROWS, tmp_path / "table.png")
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)  # (H, W, 3) uint8 -> int
    h, w, _ = img.shape
    assert h > 100 and w > 300
    grey = (np.abs(img - 217).max(axis=2) <= 2).mean()  # "0.85" grey: the cell not run
    assert 0.05 < grey < 0.4
    # the 0% cell is deep red (RdYlGn at 0), the 75% cell green
    red = ((img[..., 0] > 150) & (img[..., 1] < 40) & (img[..., 2] < 60)).mean()
    green = ((img[..., 1] > 150) & (img[..., 0] < 160) & (img[..., 2] < 130)).mean()
    assert red > 0.05 and green > 0.05


def test_matrix_md_leads_with_the_pivot_and_links_both_pngs(tmp_path):
    md = write_table(ROWS, {"suite": "libero_spatial", "task": 0}, tmp_path)
    assert md.index("| model | fresh layouts | half right |") < md.index("| model | setting |")
    assert "(table.png)" in md and (tmp_path / "table.png").is_file()


DOCS = Path(__file__).resolve().parents[2] / "docs"


def _docs_rows() -> list[dict]:
    return json.loads((DOCS / "matrix.json").read_text())["rows"]


def test_docs_matrix_md_shows_the_committed_json():
    """docs/matrix.md's two tables are those of docs/matrix.json (written by `join`, not by
    hand), and its PNG exists."""
    from para_ros.sim.matrix import table

    rows = _docs_rows()
    md = (DOCS / "matrix.md").read_text()
    assert pivot(rows) in md
    assert table(rows) in md
    assert "(matrix.png)" in md and (DOCS / "matrix.png").is_file()


def test_page_rewrites_both_tables_of_a_hand_written_page_and_keeps_its_prose(tmp_path):
    from para_ros.sim.matrix import main, table

    (tmp_path / "m.json").write_text(json.dumps({"rows": ROWS}))
    page = tmp_path / "page.md"
    stale = "| model | fresh layouts |\n|---|---|\n| para_dino_kv | 1/20 = 5% [1–24%] |\n"
    stale_cells = "| model | setting | cell |\n|---|---|---|\n| x | y | z |\n"
    page.write_text(f"# Matrix\n\n{stale}\nprose kept\n\n{stale_cells}\n## End\n")
    assert main(["page", str(tmp_path / "m.json"), "-o", str(page)]) == 0
    md = page.read_text()
    assert md == f"# Matrix\n\n{pivot(ROWS)}\nprose kept\n\n{table(ROWS)}\n## End\n"
    assert "not run" in md and "1/20" not in md  # the new column, the stale cell gone
    page.write_text("# no tables\n")
    assert main(["page", str(tmp_path / "m.json"), "-o", str(page)]) == 2
    assert page.read_text() == "# no tables\n"  # nothing written on an error


def test_docs_matrix_json_has_every_model_in_every_cell_with_n_at_least_20():
    """Issue 15's matrix is complete: no "not run" cell and N >= 20 in each."""
    rows = _docs_rows()
    models = {r["model"] for r in rows}
    labels = {r["label"] for r in rows}
    got = {(r["model"], r["label"]): r["summary"]["n"] for r in rows}
    assert len(models) == 6 and len(labels) == 3
    assert {(m, c) for m in models for c in labels} == set(got)
    assert min(got.values()) >= 20
