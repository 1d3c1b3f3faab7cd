"""`para-train-default` end to end at test scale (tiny preset, 64 px, 2 demos, 1 epoch):
every stage runs, the card is built from the run's own files, a re-run resumes."""

from __future__ import annotations

import json

import pytest

from para_training.default_recipe import main as recipe_main

pytestmark = pytest.mark.slow


def test_recipe_runs_every_stage_and_writes_a_consistent_card(
    tmp_path, capsys, ros_env, monkeypatch
):
    for k, v in ros_env.items():  # the real-time stage runs ROS 2 nodes: loopback, own domain
        monkeypatch.setenv(k, v)
    work, dest = tmp_path / "work", tmp_path / "model"
    args = [
        "-o",
        str(work),
        "--preset",
        "tiny",
        "--demos",
        "2",
        "--shift-demos",
        "1",
        "--recovery",
        "0.5",
        "--epochs",
        "1",
        "--eval-episodes",
        "2",
        "--max-steps",
        "3",
        "--realtime-episodes",
        "1",
        "--tracks",
        "in_distribution",
        "--jobs",
        "2",
        "--install",
        str(dest),
    ]
    assert recipe_main(args) == 0
    out = capsys.readouterr().out
    # the two demo parts run side by side on the track's 2 cores: both start before either ends
    first_done = min(out.index("demos_fresh: done"), out.index("demos_shift: done"))
    assert out.index("demos_shift: para_ros.sim.demos") < first_done
    assert out.index("demos_fresh: para_ros.sim.demos") < first_done
    d = work / "in_distribution"
    for f in ("demos_fresh.hdf5", "demos_shift.hdf5", "rotation_basis.json"):
        assert (d / f).is_file(), f
    assert (d / "run/best/model.safetensors").is_file()
    card = json.loads((work / "card.json").read_text())
    track = card["tracks"]["in_distribution"]
    assert track["demos"]["episodes"] == 3 and track["demos"]["image_hw"] == [64, 64]
    assert track["training"]["epochs"] == 1
    assert track["training"]["config"]["data"]["image_height"] == 64
    results = json.loads((d / "eval" / "results.json").read_text())
    # held-out fresh layouts (evaluation seeds), two shards merged
    assert sorted(e["layout"]["index"] for e in results["episodes"]) == [1_000_000, 1_000_001]
    parts = track["demos"]["parts"]
    assert [p["layouts"] for p in parts] == ["fresh", "fresh"]  # files in the parts' order
    assert parts[0]["layout_seeds"] == [0, 2] and parts[1]["layout_seeds"] == [1000, 1001]
    assert [p["setting"] for p in parts] == ["in_distribution", "position"]
    assert track["closed_loop"]["n"] == 2 and track["closed_loop"]["max_steps"] == 3
    stages = {"demos_fresh", "demos_shift", "basis", "train", "export", "eval", "realtime"}
    assert set(track["stage_seconds"]) == stages
    # the real-time executor row: one official init state through ROS 2, 3 ticks
    rt = json.loads((d / "realtime" / "results.json").read_text())
    assert rt["summary"]["n"] == 1 and rt["episodes"][0]["init_state"] == 0
    assert rt["episodes"][0]["steps"] == 3 and rt["episodes"][0]["tick_s"] > 0
    assert track["realtime"]["n"] == 1 and track["realtime"]["max_steps"] == 3
    assert "stale_steps" in track["realtime"] and "held_steps" in track["realtime"]
    md = (work / "MODEL_CARD.md").read_text()
    assert "| 2 |" in md and "64x64" in md and "**real-time executor**" in md
    # no position track in this run: the card says so instead of describing its row
    assert "No position-OOD (left -> right) row" in md and "The left -> right row is" not in md
    for f in (
        "model.onnx",
        "MODEL_CARD.md",
        "card.json",
        "eval_in_distribution.json",
        "eval_in_distribution_realtime.json",
    ):
        assert (dest / f).is_file(), f
    from para_ros.core.onnx_metadata import read_spec

    # the executor the model was evaluated with travels in its contract (card: execute_step)
    assert read_spec(dest / "model.onnx").executor.execute_step == card["execute_step"] == 1
    assert (
        "targets"
        not in json.loads((dest / "eval_in_distribution.json").read_text())["episodes"][0]
    )
    # resumable: a second run skips every finished stage
    capsys.readouterr()
    assert recipe_main(args) == 0
    out = capsys.readouterr().out
    assert out.count("exists, skipped") == 7
    # an interrupted training (here: more epochs asked for) resumes from latest/, and the
    # stages made from it run again instead of keeping the older model's outputs
    onnx_before = (d / "model.onnx").stat().st_mtime
    i = args.index("--epochs")
    assert recipe_main([*args[:i], "--epochs", "2", *args[i + 2 :]]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 0 of 2" in out
    assert "train: done" in out and "export: done" in out and "realtime: done" in out
    state = json.loads((d / "run" / "latest" / "trainer_state.json").read_text())
    assert state["epoch"] == 1
    assert (d / "model.onnx").stat().st_mtime > onnx_before
    assert (d / "eval" / "results.json").stat().st_mtime >= (d / "model.onnx").stat().st_mtime

    # a near -> far track run apart adds its row to the installed card, only when it was
    # trained with the card's recipe (the card's model now has 2 epochs)
    card_before = (dest / "card.json").read_bytes()
    onnx_before = (dest / "model.onnx").read_bytes()
    i = args.index("--tracks")
    near = [*args[:i], "--tracks", "near", "--position-demos", "2", "--ood-grid", "4"]
    near += ["--ood-episodes", "1", "--jobs", "1", "--install", str(dest)]
    near[near.index("-o") + 1] = str(tmp_path / "near")
    capsys.readouterr()
    # refused before any stage runs: the command line already differs from the card
    assert recipe_main([*near, "--max-steps", "4"]) == 2
    assert "--max-steps 4 (the card: 3)" in capsys.readouterr().err
    assert not (tmp_path / "near").exists()
    assert recipe_main(near) == 2  # 1 epoch: another recipe than the card's, found after
    err = capsys.readouterr().err
    assert "track 'near' is not a model of the recipe of" in err
    assert "training config train.epochs: 2 in the card, 1 in this run" in err
    assert (dest / "card.json").read_bytes() == card_before
    assert not (dest / "eval_near.json").exists()
    i = near.index("--epochs")
    assert recipe_main([*near[:i], "--epochs", "2", *near[i + 2 :]]) == 0
    card2 = json.loads((dest / "card.json").read_text())
    assert list(card2["tracks"]) == ["in_distribution", "near"]
    assert (
        card2["tracks"]["in_distribution"] == json.loads(card_before)["tracks"]["in_distribution"]
    )
    assert (dest / "model.onnx").read_bytes() == onnx_before  # the shipped model is untouched
    near_track = card2["tracks"]["near"]
    made = near_track["made"]
    assert made["created"] and "no GPU used" in made["machine"] and made["unchecked"] == []
    assert made["command"] == "para-train-default --tracks near --install"
    near_eps = json.loads((dest / "eval_near.json").read_text())["episodes"]
    counted = [e for e in near_eps if e["outcome"] in ("PLACE", "GRASP", "MISS")]
    assert near_track["closed_loop"]["n"] == len(counted) > 0
    assert near_track["closed_loop"]["refused"] == len(near_eps) - len(counted)
    # every start on the far half (dx < -0.075 m), refused ones included
    assert all(e["setting"]["shift_dx"] < -0.075 for e in counted)
    assert all(e["shift_dx"] < -0.075 for e in near_eps if e["outcome"] == "REFUSED")
    md = (dest / "MODEL_CARD.md").read_text()
    assert "trained on the near half, tested on the far half" in md
    assert "The near -> far row is another model of the same recipe" in md
    assert f"added to this card on {near_track['made']['created']}" in md
    assert "No position-OOD (left -> right) row" in md and "**real-time executor**" in md
    # a full re-install of the same in-distribution model keeps the near row of its recipe
    capsys.readouterr()
    i = args.index("--epochs")
    assert recipe_main([*args[:i], "--epochs", "2", *args[i + 2 :]]) == 0
    assert (
        "install: kept the near row of the earlier card (same recipe)" in capsys.readouterr().out
    )
    card3 = json.loads((dest / "card.json").read_text())
    assert list(card3["tracks"]) == ["in_distribution", "near"]
    assert card3["tracks"]["near"] == near_track and (dest / "eval_near.json").is_file()
    assert "The near -> far row is another model" in (dest / "MODEL_CARD.md").read_text()


def test_recipe_refuses_an_unknown_preset(tmp_path, capsys):
    assert recipe_main(["-o", str(tmp_path / "w"), "--preset", "libero12"]) == 2
    assert "libero128" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
