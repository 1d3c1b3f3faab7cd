"""A one-epoch tiny `para-train` run, and `para-rotation-basis`, from each format users
already have: on files the test writes (always) and on ../shared/field-data (when present),
with the same documented data-source options as para-replay-eval and para-inspect."""

from __future__ import annotations

import json
import math

import pytest

from para_ros.data.synthetic import make_episodes
from para_training.rotation_basis import main as basis_main
from para_training.train import main as train_main
from tests.format_writers import (
    REALSENSE_ARGS,
    write_calibration,
    write_lerobot,
    write_libero,
    write_realsense_bag,
)
from tests.ros_helpers.env import REPO

FIELD = REPO.parent / "shared" / "field-data"
TINY = ["--preset", "tiny", "--epochs", "1", "--threads", "1", "--no-progress"]


def _written(fmt: str, root) -> tuple[str, list[str]]:
    eps = make_episodes(4, seed=5, image_hw=(64, 64), n_frames=24)
    if fmt == "libero":
        return str(write_libero(root / "task_demo.hdf5", eps)), []
    if fmt == "lerobot":
        calib = write_calibration(root / "calib.json", eps[0])
        return str(write_lerobot(root / "ds", eps)), ["--calibration", str(calib)]
    bags = root / "bags"
    bags.mkdir()
    for k, ep in enumerate(eps):
        write_realsense_bag(bags / f"ep_{k}", ep)
    return str(bags), list(REALSENSE_ARGS)


def _field(fmt: str) -> tuple[str, list[str]]:
    from tests.test_field_data import SOURCES

    path, args, _ = SOURCES[fmt]
    return str(path), list(args)


def _train_once(data: str, args: list[str], out, capsys) -> dict:
    out.mkdir()
    basis = out / "basis.json"
    rc = basis_main([data, *args, "--allow-low-variance", "-o", str(basis)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(basis.read_text())["mode"] == "pca1d"
    rc = train_main(
        [data, *args, *TINY, "--rotation_basis", str(basis), "--output_dir", str(out)]
        + ["--run_name", "run", "--max_steps_per_epoch", "4"]
    )
    assert rc == 0, capsys.readouterr().err
    lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert math.isfinite(metrics["val_pix"]) and metrics["val_pix"] < 64
    assert (out / "run" / "best" / "model.safetensors").is_file()
    return metrics


@pytest.mark.parametrize("fmt", ["libero", "lerobot", "rosbag"])
def test_one_epoch_from_a_written_file(fmt, tmp_path, capsys):
    data, args = _written(fmt, tmp_path)
    _train_once(data, args, tmp_path / "out", capsys)
    assert "data source: " + (" ".join(args) if args else "(defaults)") in capsys.readouterr().out


@pytest.mark.skipif(not FIELD.is_dir(), reason=f"{FIELD} not present")
@pytest.mark.parametrize("fmt", ["libero", "lerobot", "rosbag"])
def test_one_epoch_from_a_field_file(fmt, tmp_path, capsys):
    data, args = _field(fmt)
    metrics = _train_once(data, args, tmp_path / "out", capsys)
    assert 0.0 <= metrics["val_grip_acc"] <= 1.0


def test_train_refuses_a_bag_it_cannot_read_with_one_line(tmp_path, capsys):
    data, _ = _written("rosbag", tmp_path)
    assert train_main([data, *TINY, "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("para-train: ") and "missing topic(s)" in err
    assert "Traceback" not in err
