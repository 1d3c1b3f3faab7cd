"""Adding a position-OOD track to an installed card: only one of the card's own recipe.
(The end-to-end path, a real near track added to a real installed card, is in
tests/sim/test_default_recipe.py.)"""

from __future__ import annotations

import copy
import json

import pytest

from para_ros.resources import DEFAULT_MODEL
from para_training.default_recipe import RecipeConfig
from para_training.model_card import add_tracks, recipe_differences
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
    # a key an older run did not record yet (None) is not a difference
    other = copy.deepcopy(ref)
    ref = {**ref, "data": {**ref["data"], "augment_mirror_prob": None}}
    other["data"]["augment_mirror_prob"] = 0.0
    assert recipe_differences(ref, other) == []


def test_adding_tracks_without_an_installed_card_is_refused_and_writes_nothing(tmp_path):
    dest = tmp_path / "model"
    cfg = RecipeConfig(out=tmp_path / "work", tracks=("near",))
    with pytest.raises(ValueError, match="no card to add the tracks \\['near'\\] to"):
        add_tracks(cfg, {"near": {}}, dest, "test machine")
    assert not dest.exists()
