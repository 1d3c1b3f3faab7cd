"""Adding a position-OOD track to an installed card: only one of the card's own recipe.
(The end-to-end path, a real near track added to a real installed card, is in
tests/sim/test_default_recipe.py.)"""

from __future__ import annotations

import copy
import json

import pytest

from para_ros.resources import DEFAULT_MODEL
from para_training.card_tracks import (
    add_tracks,
    read_card,
    recipe_differences,
    track_mismatches,
)
from para_training.default_recipe import RecipeConfig
from tests.ros_helpers.env import REPO

CARD = REPO / "models" / DEFAULT_MODEL / "card.json"


def _configs():
    tracks = json.loads(CARD.read_text())["tracks"]
    return {name: t["training"]["config"] for name, t in tracks.items()}


def test_the_shipped_cards_tracks_share_one_recipe():
    cfgs = _configs()
    ref = cfgs.pop("in_distribution")
    assert cfgs, "the shipped card has a position-OOD track"
    for name, cfg in cfgs.items():
        # they differ in their data files, the height range drawn from them, the run folder
        assert cfg["data"]["data"] != ref["data"]["data"], name
        assert recipe_differences(ref, cfg) == [], name


def test_a_changed_training_setting_is_named_by_its_key_path():
    ref = _configs()["in_distribution"]
    other = copy.deepcopy(ref)
    other["data"]["augment_orbit_deg"] = 25.0
    other["train"]["epochs"] = 3
    other["train"]["threads"] = 2  # how it was run, not what was trained
    assert recipe_differences(ref, other) == [
        "data.augment_orbit_deg: 15.0 in the card, 25.0 in this run",
        "train.epochs: 10 in the card, 3 in this run",
    ]
    # a key an older run did not record (missing, or None) counts as its config's default
    other = copy.deepcopy(ref)
    ref = {**ref, "data": {**ref["data"], "augment_mirror_prob": None}}
    other["data"]["augment_mirror_prob"] = 0.0  # DataConfig's default
    assert recipe_differences(ref, other) == []
    old_model = {k: v for k, v in ref["model"].items() if k != "cell_position_embedding"}
    other["model"]["cell_position_embedding"] = False
    assert recipe_differences({**ref, "model": old_model}, other) == [
        "model.cell_position_embedding: True in the card, False in this run"
    ]


def test_a_track_is_checked_on_its_executor_max_steps_and_recovery():
    card = json.loads(CARD.read_text())
    track = card["tracks"]["position"]
    # the shipped card predates recording the recovery fraction of its demo parts
    assert track_mismatches(card, "position", track) == ([], ["recovery fraction"])
    bad = copy.deepcopy(track)
    bad["onnx"]["execute_step"] = 0
    bad["closed_loop"]["max_steps"] = 120
    wrong, _ = track_mismatches(card, "position", bad)
    assert wrong == [
        "execute step 1 in the card, 0 in this run's model contract (its rows ran another "
        "executor)",
        "max steps 200 in the card, 120 in this run",
    ]
    recorded = copy.deepcopy(card)
    for p in recorded["tracks"]["in_distribution"]["demos"]["parts"]:
        p["recovery"] = 0.25
    for p in bad["demos"]["parts"]:
        p["recovery"] = 0.0
    wrong, unchecked = track_mismatches(recorded, "position", bad)
    assert wrong[-1] == "recovery fraction [0.25] in the card, [0.0] here" and unchecked == []


def test_a_destination_that_cannot_take_tracks_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="file: not a folder"):
        read_card(tmp_path / "file")
    card = json.loads(CARD.read_text())
    near_only = tmp_path / "near_only"
    near_only.mkdir()
    (near_only / "card.json").write_text(json.dumps({**card, "tracks": {"near": {}}}))
    with pytest.raises(ValueError, match=r"has no in_distribution track \(it has \['near'\]\)"):
        read_card(near_only)
    no_matrix = tmp_path / "no_matrix"
    no_matrix.mkdir()
    (no_matrix / "card.json").write_text(json.dumps(card))  # names matrix.json, not copied
    with pytest.raises(ValueError, match=r"names matrix\.json, which is not in"):
        read_card(no_matrix)
    shipped = read_card(CARD.parent)
    assert shipped["matrix"] == "matrix.json"


def test_adding_tracks_without_an_installed_card_is_refused_and_writes_nothing(tmp_path):
    dest = tmp_path / "model"
    cfg = RecipeConfig(out=tmp_path / "work", tracks=("near",))
    with pytest.raises(ValueError, match="no card to add tracks to"):
        add_tracks(cfg, {"near": {}}, dest, "test machine")
    assert not dest.exists()
