"""The coordinate-regression baseline end to end, through the registry: it trains with the
same data pipeline, exports to ONNX with parity, and runs in OnnxPolicy (world_regression
head, the current EEF fed as a declared runtime input) giving finite world targets."""

from __future__ import annotations

import numpy as np
import pytest

from para_ros.runtime.onnx_policy import Observation, OnnxPolicy
from para_training.export import export_onnx
from para_training.train import train
from tests.training.voxel_variants import check_parity, configs


@pytest.fixture(scope="module")
def coord_run(tmp_path_factory, episodes):
    out = tmp_path_factory.mktemp("coord")
    data, hparams, cfg, arch = configs(out, "tiny_coord", epochs=2)
    run_dir, metrics = train(data, hparams, cfg, episodes=episodes, architecture=arch)
    return run_dir, metrics


def _check_onnx(run_dir, tmp_path, episodes, extra_names):
    path = tmp_path / "coord.onnx"
    spec = export_onnx(run_dir / "best", path)
    assert spec.model.architecture == "coord_regression"
    assert spec.model.head == "world_regression"
    assert [i.name for i in spec.model.extra_inputs] == extra_names
    assert [t.name for t in spec.model.inputs] == ["image", *extra_names]
    check_parity(path, run_dir / "best")
    policy = OnnxPolicy(str(path), providers=["CPUExecutionProvider"])
    assert not policy.has_start_keypoint
    T = spec.window.steps
    ep = episodes[-1]
    for f in (0, 5, 20):
        obs = Observation(
            np.asarray(ep.rgb[f]),
            ep.K_at(f),
            ep.T_world_cam_at(f),
            ep.eef_pos[f],
            gripper=float(ep.gripper[f - 1]) if f else None,
        )
        res = policy.infer(obs)
        ch = res.chunk
        assert ch.positions.shape == (T, 3) and np.isfinite(ch.positions).all()
        assert ch.valid.all() and ch.quat_xyzw.shape == (T, 4)
        assert ch.gripper.shape == (T,) and np.isfinite(ch.gripper).all()
        # world targets near the workspace the data spans (metres, not standardised units)
        lo, hi = ep.eef_pos.min(0) - 0.5, ep.eef_pos.max(0) + 0.5
        assert ((ch.positions > lo) & (ch.positions < hi)).all(), ch.positions
    return spec


def test_coord_regression_trains_with_the_same_pipeline(coord_run):
    run_dir, metrics = coord_run
    assert metrics["epoch"] == 1 and np.isfinite(metrics["train_loss"])
    # validated through the deployment decode (world_regression head): finite world errors
    assert np.isfinite(metrics["val_3d_mm"]) and np.isfinite(metrics["val_pix"])
    assert (run_dir / "best" / "model.safetensors").is_file()


def test_coord_regression_exports_with_parity_and_runs_in_the_runtime(
    coord_run, tmp_path, episodes
):
    run_dir, _ = coord_run
    spec = _check_onnx(run_dir, tmp_path, episodes, ["eef_pos"])
    hp = spec.model.hyperparameters
    assert len(hp["position_mean"]) == 3 and min(hp["position_std"]) > 0


def test_coord_regression_with_the_gripper_state_input(tmp_path, episodes):
    data, hparams, cfg, arch = configs(tmp_path, "tiny_coord", epochs=1, max_steps_per_epoch=3)
    run_dir, _ = train(
        data, {**hparams, "gripper_input": True}, cfg, episodes=episodes, architecture=arch
    )
    _check_onnx(run_dir, tmp_path, episodes, ["eef_pos", "gripper_state"])
