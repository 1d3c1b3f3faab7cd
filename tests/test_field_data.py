"""The three field files of ../shared/field-data (written by the tools their formats come from;
see its README), read with documented options only, against ground truth: the simulator's
camera (calibration_agentview128.json: K and T_world_cam of LIBERO's agentview at 128 px),
the same trajectories across formats, and the shipped model's open-loop replay on each.
Skipped when ../shared is not beside the repository."""

from __future__ import annotations

import json

import numpy as np
import pytest

from para_ros.data.readers import load_episodes
from para_ros.data.source import DataSource
from tests.ros_helpers.env import REPO

FIELD = REPO.parent / "shared" / "field-data"
pytestmark = pytest.mark.skipif(not FIELD.is_dir(), reason=f"{FIELD} not present")

CALIB = FIELD / "calibration_agentview128.json"
LIBERO = FIELD / "libero_official_layout"
LEROBOT = FIELD / "lerobot_v3_video"
BAGS = FIELD / "rosbag_realsense_tf"
BAG_ARGS = [
    "--image-topic",
    "/camera/camera/color/image_raw/compressed",
    "--camera-info-topic",
    "/camera/camera/color/camera_info",
    "--eef-frame",
    "panda_hand_tcp",
    "--gripper-from",
    "fingers",
]
SOURCES = {
    "libero": (LIBERO, [], DataSource()),
    "lerobot": (LEROBOT, ["--calibration", str(CALIB)], DataSource(calibration=str(CALIB))),
    "rosbag": (
        BAGS,
        BAG_ARGS,
        DataSource(
            image_topic="/camera/camera/color/image_raw/compressed",
            camera_info_topic="/camera/camera/color/camera_info",
            eef_frame="panda_hand_tcp",
            gripper_from="fingers",
        ),
    ),
}


@pytest.fixture(scope="module")
def field():
    return {name: load_episodes(path, src) for name, (path, _, src) in SOURCES.items()}


def test_cameras_equal_the_simulators(field):
    truth = json.loads(CALIB.read_text())
    for name in ("libero", "rosbag"):  # derived from the MJCF / from /tf_static + CameraInfo
        for ep in field[name]:
            np.testing.assert_allclose(ep.K_at(0), truth["K"], atol=1e-9, err_msg=name)
            np.testing.assert_allclose(
                ep.T_world_cam_at(0), truth["T_world_cam"], atol=1e-6, err_msg=name
            )


def test_formats_agree_frame_by_frame(field):
    """The field files hold the same scripted trajectories: the first two episodes of each
    format are the same frames, poses and gripper commands (up to codecs and stamps)."""
    lib = field["libero"]
    assert [len(e) for e in field["lerobot"][:2]] == [len(e) for e in lib] == [49, 50]
    for k, ref in enumerate(lib):
        for name in ("lerobot", "rosbag"):
            ep = field[name][k]
            # upright in every format: a flipped image differs by ~58 grey levels on average
            assert np.abs(ep.rgb.astype(int) - ref.rgb).mean() < 4.0, name
            assert np.abs(ep.rgb.astype(int) - ref.rgb[:, ::-1]).mean() > 30.0, name
            cos = np.abs(np.sum(ep.eef_quat * ref.eef_quat, axis=1))
            assert cos.min() > 0.999, name
        np.testing.assert_allclose(field["lerobot"][k].eef_pos, ref.eef_pos, atol=1e-6)
        np.testing.assert_array_equal(field["lerobot"][k].gripper, ref.gripper)
        # the bag's images are 4 ms after their /tf sample: the EEF is interpolated there
        assert np.abs(field["rosbag"][k].eef_pos - ref.eef_pos).max() < 0.01
        # gripper from the finger joints: equal to the recorded command but at transitions
        assert np.mean(field["rosbag"][k].gripper == ref.gripper) > 0.95


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_shipped_model_replays_each_format(fmt, tmp_path, capsys):
    """para-replay-eval with the shipped LIBERO model: ~2 px at 128 on every format (an
    upside-down image or a wrong camera gives > 15 px)."""
    from para_ros.replay.cli import main as replay_main

    path, args, _ = SOURCES[fmt]
    model = REPO / "models" / "para_libero_spatial_t0" / "model.onnx"
    out = tmp_path / "replay"
    rc = replay_main([str(path), *args, "--model", str(model), "-o", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    summaries = [e["summary"] for e in report["bags"].values()]  # one entry per episode
    assert len(summaries) == {"libero": 2, "lerobot": 5, "rosbag": 2}[fmt]
    for s in summaries:
        assert s["val_pix"] < 3.0, s
        assert s["val_grip_acc"] > 0.95, s
        assert s["val_3d_mm"] < 25.0, s


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_wrong_input_is_one_clear_message(fmt, capsys):
    from para_ros.data.inspect import main as inspect_main

    path, args, _ = SOURCES[fmt]
    wrong = {
        "libero": ["--camera", "robot0_eye_in_hand"],
        "lerobot": [],  # no calibration
        "rosbag": [a if a != "fingers" else "topic" for a in BAG_ARGS],
    }[fmt]
    assert inspect_main([str(path), *wrong]) == 2
    out = capsys.readouterr().out
    expect = {
        "libero": "no obs/robot0_eye_in_hand_rgb or obs/robot0_eye_in_hand_image",
        "lerobot": "store no camera calibration",
        "rosbag": "no gripper command topic /gripper_command",
    }[fmt]
    assert expect in out and "Traceback" not in out
    assert inspect_main([str(path), *args]) == 0
