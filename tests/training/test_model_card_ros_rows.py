"""ROS 2 rows of an installed card (para_training.model_card.add_ros_row): a simulated-arm row
joins the shipped card beside the real-time row, with N and the Wilson interval."""

from __future__ import annotations

import json
import shutil

import pytest

from para_training.model_card import add_ros_row, main, render_installed
from tests.ros_helpers.env import REPO

SHIPPED = REPO / "models" / "para_libero_spatial_t0"


@pytest.fixture
def installed(tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(SHIPPED, dest)
    return dest


def test_the_shipped_card_renders_as_installed():
    card = json.loads((SHIPPED / "card.json").read_text())
    assert render_installed(card, SHIPPED) == (SHIPPED / "MODEL_CARD.md").read_text()


def test_a_driver_row_is_added_with_n_and_interval(installed, tmp_path):
    # a para-deploy --sim results file: 18 PLACE, 2 MISS of 20 (the shipped real-time file's
    # episodes, two of them turned into misses)
    r = json.loads((SHIPPED / "eval_in_distribution_realtime.json").read_text())
    for e in r["episodes"][:2]:
        e["outcome"] = "MISS"
    r["summary"].update(PLACE=18, MISS=2)
    results = tmp_path / "driver.json"
    results.write_text(json.dumps(r))
    assert main(["add-row", str(installed), "driver", str(results)]) == 0
    card = json.loads((installed / "card.json").read_text())
    row = card["tracks"]["in_distribution"]["driver"]
    assert (row["PLACE"], row["MISS"], row["n"]) == (18, 2, 20)
    assert row["ci95"] == pytest.approx([0.699, 0.972], abs=1e-3)
    text = (installed / "MODEL_CARD.md").read_text()
    line = next(x for x in text.splitlines() if "**simulated arm**" in x)
    assert "| 20 | 18 | 0 | 2 | 18/20 = 90% [70–97%] |" in line, line
    assert "**real-time executor**" in text  # the other rows stay
    assert (installed / "eval_in_distribution_driver.json").is_file()


def test_an_incomplete_run_or_unknown_row_is_refused(installed, tmp_path):
    r = json.loads((SHIPPED / "eval_in_distribution_realtime.json").read_text())
    r["summary"]["complete"] = False
    results = tmp_path / "partial.json"
    results.write_text(json.dumps(r))
    before = (installed / "card.json").read_text()
    with pytest.raises(ValueError, match="not complete"):
        add_ros_row(installed, "driver", results)
    with pytest.raises(ValueError, match="unknown row 'lockstep'"):
        add_ros_row(installed, "lockstep", results)
    assert (installed / "card.json").read_text() == before  # nothing written
