"""para-eval-sim (shards + merge) and para-eval-matrix produce whole, consistent results."""

from __future__ import annotations

import json
from pathlib import Path

from para_ros.sim.evaluate import main as eval_main
from para_ros.sim.evaluate import start_key
from para_ros.sim.matrix import main as matrix_main


def test_shards_merge_to_the_whole_run(exported, tmp_path, capsys):
    onnx_path, _, _ = exported
    common = [
        "--model",
        str(onnx_path),
        "--episodes",
        "2",
        "--max-steps",
        "2",
        "--image-size",
        "64",
        "-o",
        str(tmp_path),
    ]
    for shard in (0, 1):
        assert eval_main([*common, "--shard", str(shard), "--num-shards", "2"]) == 0
    parts = sorted(tmp_path.glob("results_shard*of2.json"))
    assert len(parts) == 2
    inits = [e["init_state"] for p in parts for e in json.loads(p.read_text())["episodes"]]
    assert sorted(inits) == [0, 1]  # every episode exactly once
    assert eval_main(["merge", *map(str, parts), "-o", str(tmp_path / "all.json")]) == 0
    merged = json.loads((tmp_path / "all.json").read_text())
    assert merged["summary"]["n"] == 2
    assert sum(merged["summary"][k] for k in ("PLACE", "GRASP", "MISS")) == 2
    assert eval_main(["merge", str(parts[0]), "-o", str(tmp_path / "bad.json")]) == 2
    # a shard given twice would count its starts twice: refused, N counts distinct starts
    twice = ["merge", str(parts[0]), *map(str, parts), "-o", str(tmp_path / "twice.json")]
    assert eval_main(twice) == 2
    assert "repeat starts" in capsys.readouterr().err
    s = merged["summary"]
    assert s["distinct_starts"] == 2 and s["ci95"][0] <= s["success_rate"] <= s["ci95"][1]


def test_matrix_rows_with_intervals_and_plot(exported, tmp_path):
    import shutil

    onnx_path, _, _ = exported
    split = tmp_path / "half_model.onnx"
    shutil.copy(onnx_path, split)
    args = ["--models", str(onnx_path), "--episodes", "1", "--max-steps", "2"]
    args += ["--image-size", "64", "--thetas", "10", "--azimuths", "2", "--halves", "right"]
    args += ["--grid", "2", "--split-models", f"right={split}", "--shifts-cm", "3"]
    args += ["--shift-directions", "2", "-o", str(tmp_path / "m")]
    assert matrix_main(args) == 0
    out = json.loads((tmp_path / "m" / "matrix.json").read_text())
    rows = {r["label"]: r for r in out["rows"]}
    assert list(rows) == [
        "official init states",
        "fresh layouts",
        "θ = 10° x 2 azimuths",
        "half right",
        "shift 3 cm",
    ]
    assert rows["θ = 10° x 2 azimuths"]["summary"]["n"] == 2  # 1 init state x 2 azimuths
    assert rows["half right"]["model"] == "half_model"  # the split's own model
    # 2 shifts of 3 cm: each ran or was refused, never both, never counted twice
    shift = rows["shift 3 cm"]
    assert shift["summary"]["n"] + shift["refused"] == 2
    assert rows["fresh layouts"]["layout_report"]["layout_seeds"] == [1_000_000]
    md = (tmp_path / "m" / "matrix.md").read_text()
    for r in out["rows"]:
        s = r["summary"]
        lo, hi = s["ci95"]
        assert 0.0 <= lo <= s["success_rate"] <= hi <= 1.0
        assert f"| {r['label']} | {s['n']} | {s['PLACE']} |" in md
    assert "not checked against the training demos" in md
    from PIL import Image

    png = Image.open(tmp_path / "m" / "success.png")
    assert png.size[0] > 500 and png.size[1] > 300


def test_ros_mode_executes_the_same_targets_as_in_process(
    exported, tmp_path, ros_env, monkeypatch
):
    import numpy as np

    for k, v in ros_env.items():
        monkeypatch.setenv(k, v)
    onnx_path, _, _ = exported
    common = [
        "--model",
        str(onnx_path),
        "--episodes",
        "1",
        "--max-steps",
        "3",
        "--image-size",
        "64",
    ]
    assert eval_main([*common, "-o", str(tmp_path / "local")]) == 0
    assert eval_main([*common, "-o", str(tmp_path / "ros"), "--ros"]) == 0
    local = json.loads((tmp_path / "local" / "results_shard0of1.json").read_text())
    ros = json.loads((tmp_path / "ros" / "results_shard0of1.json").read_text())
    assert ros["via"] == "ros2" and ros["summary"] == local["summary"]
    np.testing.assert_allclose(
        ros["episodes"][0]["targets"], local["episodes"][0]["targets"], atol=1e-9
    )


def test_bad_model_and_bad_task_are_clear_errors(tmp_path, capsys):
    from para_ros.sim.demos import main as demos_main

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    assert eval_main(["--model", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "para-eval-sim: cannot load ONNX model" in capsys.readouterr().err
    assert demos_main(["-o", str(tmp_path / "d.hdf5"), "--task", "99"]) == 2
    assert "libero_spatial has tasks 0..9, got 99" in capsys.readouterr().err
    assert not (tmp_path / "d.hdf5").exists()


def test_matrix_in_shards_merges_to_the_unsharded_table(exported, tmp_path, capsys):
    """Two shards of the matrix, joined by `para-eval-matrix merge`, give every cell the same
    starts and outcomes as one process; a missing shard is refused, and a shard alone
    writes no table."""
    onnx_path, _, _ = exported
    base = ["--models", str(onnx_path), "--episodes", "2", "--max-steps", "3"]
    base += ["--image-size", "64", "--settings", "official", "viewpoint", "--thetas", "10"]
    base += ["--azimuths", "2"]
    assert matrix_main([*base, "-o", str(tmp_path / "one")]) == 0
    for i in (0, 1):
        args = [*base, "--shard", str(i), "--num-shards", "2", "-o", str(tmp_path / "sh")]
        assert matrix_main(args) == 0
    assert not (tmp_path / "sh" / "matrix.md").exists()
    shards = [str(tmp_path / "sh" / f"matrix_shard{i}of2.json") for i in (0, 1)]
    assert matrix_main(["merge", shards[0], "-o", str(tmp_path / "bad")]) == 2
    assert "merge needs shards 0..1" in capsys.readouterr().err
    assert matrix_main(["merge", *shards, "-o", str(tmp_path / "sh")]) == 0
    one = json.loads((tmp_path / "one" / "matrix.json").read_text())["rows"]
    merged = json.loads((tmp_path / "sh" / "matrix.json").read_text())["rows"]
    assert [r["label"] for r in merged] == [r["label"] for r in one]

    def outcomes(row):
        eps = json.loads(Path(row["results"]).read_text())["episodes"]
        return sorted((start_key(e), e["outcome"], e["targets"]) for e in eps)

    for a, b in zip(one, merged, strict=True):
        assert a["summary"] == b["summary"]
        assert outcomes(a) == outcomes(b)
    assert merged[1]["summary"]["n"] == 4  # 2 init states x 2 azimuths


def test_matrix_join_puts_separate_runs_in_one_table(exported, tmp_path, capsys):
    """`para-eval-matrix join`: complete runs of other models and settings become one table
    (rows in order, the plot drawn); runs with other episode settings, a shard, or the same
    (model, cell) twice are refused with the reason."""
    import shutil

    onnx_path, _, _ = exported
    a, b = tmp_path / "model_a.onnx", tmp_path / "model_b.onnx"
    shutil.copy(onnx_path, a)
    shutil.copy(onnx_path, b)
    base = ["--episodes", "1", "--max-steps", "2", "--image-size", "64"]
    runs = {
        "a": ["--models", str(a), "--settings", "fresh"],
        "b": ["--models", str(b), "--settings", "viewpoint", "--thetas", "10", "--azimuths", "2"],
        "c": ["--models", str(a), "--settings", "fresh", "--max-steps", "3"],
    }
    for name, args in runs.items():
        assert matrix_main([*base, *args, "-o", str(tmp_path / name)]) == 0
    table = [str(tmp_path / n / "matrix.json") for n in ("a", "b")]
    assert matrix_main(["join", *table, "-o", str(tmp_path / "all")]) == 0
    rows = json.loads((tmp_path / "all" / "matrix.json").read_text())["rows"]
    assert [(r["model"], r["label"]) for r in rows] == [
        ("model_a", "fresh layouts"),
        ("model_b", "θ = 10° x 2 azimuths"),
    ]
    assert [r["summary"]["n"] for r in rows] == [1, 2]
    md = (tmp_path / "all" / "matrix.md").read_text()
    assert "| model_a | fresh | fresh layouts | 1 |" in md and "success.png" in md
    # the models x cells table: each model's line has the cell the other model was run on
    lines = md.splitlines()
    assert lines[2] == "| model | fresh layouts | θ = 10° x 2 azimuths |" and "table.png" in md
    assert lines[4].startswith("| model_a | ") and lines[4].endswith(" | not run |")
    assert lines[5].startswith("| model_b | not run | ")
    other = ["join", table[0], str(tmp_path / "c" / "matrix.json"), "-o", str(tmp_path / "x")]
    assert matrix_main(other) == 2
    assert "max_steps" in capsys.readouterr().err
    assert matrix_main(["join", table[0], table[0], "-o", str(tmp_path / "x")]) == 2
    assert "already in another file" in capsys.readouterr().err


def test_defaults_are_the_cards_setting(exported, tmp_path):
    """With no --image-size the render is the model's input size (its demos' size), and
    every closed-loop tool and the bridge default to the card's 200 policy steps."""
    import yaml

    from para_ros.core.onnx_metadata import read_spec
    from para_ros.nodes.libero_bridge import PARAMS
    from para_ros.sim.evaluate import build_parser as eval_parser
    from para_ros.sim.libero_sim import MAX_STEPS
    from para_ros.sim.matrix import build_parser as matrix_parser
    from tests.ros_helpers.env import REPO

    onnx_path, _, _ = exported
    assert eval_main(["--model", str(onnx_path), "--episodes", "1", "--max-steps", "1",
                      "-o", str(tmp_path)]) == 0  # fmt: skip
    ep = json.loads(next(tmp_path.glob("results*.json")).read_text())["episodes"][0]
    assert ep["setting"]["image_size"] == read_spec(onnx_path).image.height == 64
    assert MAX_STEPS == 200
    assert eval_parser().parse_args(["--model", "m"]).max_steps == MAX_STEPS
    assert matrix_parser().parse_args(["--models", "m"]).max_steps == MAX_STEPS
    assert PARAMS["max_steps"][0] == MAX_STEPS
    yaml_file = REPO / "config" / "libero_bridge.yaml"
    bridge = yaml.safe_load(yaml_file.read_text())["para_libero_bridge"]["ros__parameters"]
    assert bridge["max_steps"] == MAX_STEPS
