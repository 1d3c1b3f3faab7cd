"""para-eval-sim (shards + merge) and para-eval-matrix produce whole, consistent results."""

from __future__ import annotations

import json

from para_ros.sim.evaluate import main as eval_main
from para_ros.sim.matrix import main as matrix_main


def test_shards_merge_to_the_whole_run(exported, tmp_path):
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


def test_matrix_table(exported, tmp_path, capsys):
    onnx_path, _, _ = exported
    assert (
        matrix_main(
            [
                "--models",
                str(onnx_path),
                "--episodes",
                "1",
                "--max-steps",
                "2",
                "--image-size",
                "64",
                "--theta",
                "15",
                "--positions-file",
                str(_positions(tmp_path)),
                "-o",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    md = (tmp_path / "m" / "matrix.md").read_text()
    assert "| model | in_distribution | viewpoint | position |" in md
    assert md.count("(n=1;") == 2 and "(n=2;" in md  # position: 2 shifts x 1 episode
    cells = json.loads((tmp_path / "m" / "matrix.json").read_text())
    row = cells[str(onnx_path)]
    assert row["viewpoint"]["n"] == 1 and row["position"]["n"] == 2


def _positions(tmp_path):
    p = tmp_path / "positions.txt"
    p.write_text("# dx dy (m)\n0.0 0.02\n-0.02 0.03\n")
    return p


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
