"""Test-wide settings: stable CPU timing and loopback-only, isolated ROS 2 traffic."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

# These machines have 2 shared cores: busy-waiting OpenMP/ORT threads slow everything ~12x
# under contention (RECIPES). Set before numpy/torch/onnxruntime are imported by any test.
for _k, _v in {
    "OMP_WAIT_POLICY": "PASSIVE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}.items():
    os.environ.setdefault(_k, _v)

# MuJoCo's EGL rendering loads Mesa, and Mesa loads the system's libLLVM; triton (pulled in by
# torch's compiler stack, e.g. through torchvision.ops) bundles its own LLVM and segfaults when
# it is loaded after that (2026-12-06: LiberoSim, then `import torchvision.ops`, in one
# process). Tests mix both in one process in any order, so triton is loaded first.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

from tests.ros_helpers.env import REPO, ros_isolated_env  # noqa: E402

__all__ = ["REPO", "ros_isolated_env"]

# The test process itself runs rclpy too (drivers): the same isolation as its children.
_LOG_DIR = Path(tempfile.mkdtemp(prefix="para_ros_test_log_"))
os.environ.update(ros_isolated_env(_LOG_DIR))


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    log_dir = tmp_path / "ros_log"
    log_dir.mkdir()
    return ros_isolated_env(log_dir)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


# -- shared training fixtures: synthetic episodes and one tiny trained model per session --


def tiny_configs(out_dir, epochs: int, preset: str = "tiny", **train_overrides):
    from para_training.configs import DataConfig, TrainConfig, get_preset

    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], val_fraction=0.17, **p["data"])
    cfg = TrainConfig(
        output_dir=str(out_dir),
        run_name="run",
        epochs=epochs,
        threads=1,
        progress=False,
        **{**p["train"], **train_overrides},
    )
    return data, dict(p["model"]), cfg


@pytest.fixture(scope="session")
def episodes():
    from para_ros.data.synthetic import make_episodes

    return make_episodes(24, seed=0, n_frames=40)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, episodes):
    """(run folder, last metrics, all epoch metrics) of a 6-epoch tiny run (~20 s on 1 core)."""
    import json

    from para_training.train import train

    out = tmp_path_factory.mktemp("train")
    data, hparams, cfg = tiny_configs(out, epochs=6)
    run_dir, metrics = train(data, hparams, cfg, episodes=episodes)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run_dir, metrics, history


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """(onnx path, checkpoint folder, PolicySpec) of the tiny model exported from `best`."""
    from para_training.export import export_onnx

    run_dir, _, _ = trained
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    spec = export_onnx(run_dir / "best", out)
    return out, run_dir / "best", spec
