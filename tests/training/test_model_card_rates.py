"""The model card reports every success rate with N and its 95% Wilson interval, and takes
the held-out table from para-eval-matrix's JSON (one renderer for both)."""

from __future__ import annotations

import json

from para_ros.core.stats import format_rate, wilson_interval
from para_ros.resources import DEFAULT_MODEL
from para_ros.sim.evaluate import summarise
from para_training.model_card import render_markdown
from tests.ros_helpers.env import REPO

CARD = REPO / "models" / DEFAULT_MODEL / "card.json"


def test_card_rates_carry_n_and_wilson_interval(tmp_path):
    card = json.loads(CARD.read_text())
    # a matrix.json as para-eval-matrix writes it, from the shipped evaluation's episodes
    eps = json.loads((CARD.parent / "eval_in_distribution.json").read_text())["episodes"]
    summary = summarise([e for e in eps if e["outcome"] in ("PLACE", "GRASP", "MISS")])
    row = {"model": "m", "setting": "official", "label": "official init states", "x": 0.0}
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps({"rows": [{**row, "summary": summary, "refused": 0}]}))
    md = render_markdown({**card, "matrix": str(matrix)})
    for track in card["tracks"].values():
        cl = track["closed_loop"]
        text = format_rate(cl["PLACE"], cl["n"])
        lo, hi = wilson_interval(cl["PLACE"], cl["n"])
        assert f"[{100 * lo:.0f}–{100 * hi:.0f}%]" in text
        assert f"| {cl['n']} | {cl['PLACE']} | {cl['GRASP']} | {cl['MISS']} | {text} |" in md
    assert "## Held-out closed loop (para-eval-matrix)" in md
    assert f"| official init states | {summary['n']} | {summary['PLACE']} |" in md
    assert format_rate(summary["PLACE"], summary["n"]) in md
    assert summary["distinct_starts"] == summary["n"]


def test_card_names_the_augmentation_the_model_was_trained_with():
    from dataclasses import asdict

    from para_training.configs import DataConfig, get_preset
    from para_training.model_card import _augmentation_line

    data = get_preset("libero128")["data"]  # the shipped recipe's preset: orbit, depth warp
    line = _augmentation_line(data)
    assert "orbited about the table point it looks at by up to 15 deg on 70%" in line
    assert "each pixel moved by the demo's depth" in line and "colour jitter 0.1" in line
    assert "homography" not in line and "rotated about its centre" not in line
    plane = _augmentation_line({**data, "augment_orbit_warp": "plane"})
    assert "the table plane's homography" in plane
    assert _augmentation_line(asdict(DataConfig())) == "- augmentation (training samples): none"


def test_card_says_how_many_starts_were_refused():
    card = json.loads(CARD.read_text())
    track = next(iter(card["tracks"]))
    cl = {**card["tracks"][track]["closed_loop"], "refused": 31}
    tracks = {track: {**card["tracks"][track], "closed_loop": cl}}
    md = render_markdown({**card, "tracks": tracks, "matrix": None})
    assert "; 31 more starts refused before the first step" in md
    assert f"not counted in N | {cl['n']} | {cl['PLACE']} |" in md
    cl0 = {**cl, "refused": 0}
    md0 = render_markdown(
        {**card, "matrix": None, "tracks": {track: {**tracks[track], "closed_loop": cl0}}}
    )
    assert "more starts refused" not in md0


def test_shipped_card_points_at_its_own_matrix_copy():
    """card.json names the matrix.json shipped next to it (not the recipe's work folder), and
    the shipped card's held-out table is that file's, rendered."""
    from para_training.model_card import matrix_lines

    card = json.loads(CARD.read_text())
    assert "matrix" in card  # make train-default runs the matrix (--matrix-episodes 2)
    path = CARD.parent / card["matrix"]
    assert card["matrix"] == "matrix.json" and path.is_file()
    md = (CARD.parent / "MODEL_CARD.md").read_text()
    table = "\n".join(matrix_lines(path))
    assert table.split("\n\n")[1] in md  # the same rows
