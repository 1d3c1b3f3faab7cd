"""DDP under torchrun (2 processes, gloo, loopback) and ONNX export parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

from para_ros.core.onnx_metadata import read_spec
from para_ros.data.hdf5_io import write_hdf5
from para_training.export import OUTPUT_NAMES, parity, quantize_int8
from tests.ros_helpers.env import REPO


def test_ddp_two_processes_one_epoch(tmp_path, episodes):
    data = tmp_path / "demos.hdf5"
    write_hdf5(data, episodes[:6])
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "para_training.train",
        "--preset",
        "tiny",
        str(data),
        "--epochs",
        "1",
        "--max_steps_per_epoch",
        "3",
        "--batch_size",
        "4",
        "--threads",
        "1",
        "--no-progress",
        "--output_dir",
        str(tmp_path / "runs"),
        "--run_name",
        "ddp",
    ]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "distributed: world_size=2 backend=gloo" in res.stdout
    assert res.stdout.count("epoch 0:") == 1  # rank 0 alone logs
    run = tmp_path / "runs" / "ddp"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["step"] == 3
    assert (run / "latest" / "model.safetensors").is_file()


def test_export_parity_fp32(exported):
    onnx_path, ckpt_dir, _spec = exported
    rep = parity(onnx_path, ckpt_dir, batch=4)
    for name in ("voxel", "gripper_bin", "rotation_bin"):
        assert rep[f"{name}_agreement"] == 1.0, rep
    for name in ("gripper_logits", "rotation_logits", "heatmap", "voxel_prob"):
        assert rep[f"{name}_rel_err"] < 1e-4, rep


def test_exported_model_describes_itself(exported):
    onnx_path, _, spec = exported
    assert read_spec(onnx_path) == spec
    assert [t.name for t in spec.model.outputs] == list(OUTPUT_NAMES)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    assert inputs["image"][0] == "tensor(uint8)" and inputs["image"][1][1:] == [64, 64, 3]
    for batch in (1, 5):  # dynamic batch
        out = sess.run(
            None,
            {
                "image": np.zeros((batch, 64, 64, 3), np.uint8),
                "start_keypoint": np.zeros((batch, 3), np.float32),
            },
        )
        assert out[0].shape == (batch, spec.window.steps, 3)
        assert out[6].shape == (batch, spec.window.steps, 16, 16)


def test_int8_export_has_contract_and_reports_parity(exported, tmp_path):
    onnx_path, ckpt_dir, spec = exported
    q = quantize_int8(onnx_path, tmp_path / "tiny.int8.onnx")
    assert read_spec(q).window == spec.window
    assert q.stat().st_size < onnx_path.stat().st_size
    rep = parity(q, ckpt_dir, batch=4)
    assert rep["voxel_agreement"] >= 0.75  # int8 may flip near-ties; reported, not hidden


def test_gripper_state_input_trains_exports_and_is_fed_by_the_runtime(tmp_path, episodes):
    """gripper_input: the start keypoint's 4th value is the gripper command being executed
    (dataset: the command sent after the previous frame; runtime: Observation.gripper, the
    contract's open value before the first command)."""
    from para_ros.runtime.onnx_policy import Observation, OnnxPolicy
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.export import export_onnx
    from para_training.train import make_spec, train
    from tests.conftest import tiny_configs

    data, hparams, cfg = tiny_configs(tmp_path, epochs=1)
    hparams["gripper_input"] = True
    spec, _ = make_spec(episodes, data, hparams, log=lambda *_: None)
    assert spec.uses_gripper_state
    ds = ParaWindowDataset(episodes, spec, sample_index(episodes, [0]))
    ep = episodes[0]
    assert ds[0]["start"].shape == (4,)
    assert float(ds[0]["start"][3]) == spec.gripper.open_value
    np.testing.assert_allclose(float(ds[5]["start"][3]), ep.gripper[4], atol=1e-6)

    run_dir, _ = train(data, hparams, cfg, episodes=episodes)
    onnx_path = tmp_path / "grip.onnx"
    export_onnx(run_dir / "best", onnx_path)
    rep = parity(onnx_path, run_dir / "best")
    assert rep["voxel_agreement"] == 1.0 and rep["gripper_logits_rel_err"] < 1e-4, rep
    policy = OnnxPolicy(str(onnx_path), ["CPUExecutionProvider"])
    f = 5
    obs = dict(
        image=np.asarray(ep.rgb[f]),
        K=ep.K_at(f),
        T_world_cam=ep.T_world_cam_at(f),
        eef_pos=ep.eef_pos[f],
    )
    first = policy.infer(Observation(**obs))
    assert first.start_keypoint.shape == (4,)
    assert first.start_keypoint[3] == np.float32(spec.gripper.open_value)
    closed = policy.infer(Observation(**obs, gripper=spec.gripper.max))
    assert closed.start_keypoint[3] == np.float32(spec.gripper.max)
    np.testing.assert_allclose(first.start_keypoint[:3], closed.start_keypoint[:3])
