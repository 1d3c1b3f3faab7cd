"""Readers of the formats users already have, on files the tests write (official LIBERO HDF5,
LeRobot v3.0, rosbag2 as a Panda + RealSense record it), the shared data-source options, and
para-inspect. Pure: no torch, no rclpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from para_ros.data.episode import EpisodeError
from para_ros.data.inspect import main as inspect_main
from para_ros.data.readers import load_episodes
from para_ros.data.rosbag_io import BagError
from para_ros.data.source import DataSource
from para_ros.data.synthetic import make_episodes
from tests.format_writers import (
    REALSENSE_ARGS,
    write_calibration,
    write_lerobot,
    write_libero,
    write_realsense_bag,
)

REALSENSE = DataSource(
    image_topic="/camera/color/image_raw/compressed",
    camera_info_topic="/camera/color/camera_info",
    eef_frame="panda_hand_tcp",
    gripper_from="fingers",
)


@pytest.fixture(scope="module")
def eps():
    return make_episodes(3, seed=3, image_hw=(64, 64), n_frames=30)


def _same_rotation(a, b, atol=1e-6):
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=1)), 1.0, atol=atol)


# -- official LIBERO ------------------------------------------------------------------------


def test_libero_official_layout(tmp_path, eps):
    path = write_libero(tmp_path / "pick_bowl_demo.hdf5", eps)
    back = load_episodes(path)  # detected as LIBERO: no camera group, a model_file per demo
    assert len(back) == 3
    for a, b in zip(eps, back, strict=True):
        assert np.array_equal(b.rgb, a.rgb)  # flipped back upright ("opengl")
        np.testing.assert_allclose(b.K, a.K, atol=1e-9)  # MuJoCo default fovy 45
        np.testing.assert_allclose(b.T_world_cam, a.T_world_cam, atol=1e-9)  # via the body
        np.testing.assert_allclose(b.eef_pos, a.eef_pos)
        _same_rotation(b.eef_quat, a.eef_quat)
        np.testing.assert_array_equal(b.gripper, a.gripper)
        np.testing.assert_allclose(b.time, np.arange(len(a)) / 20.0)
        assert b.language == a.language
    # a whole suite folder, filtered by task
    write_libero(tmp_path / "other_task_demo.hdf5", eps[:1])
    assert len(load_episodes(tmp_path)) == 4
    assert len(load_episodes(tmp_path, DataSource(task="pick_bowl"))) == 3


def test_libero_convention_and_camera_errors(tmp_path, eps):
    upright = write_libero(tmp_path / "a.hdf5", eps[:1], convention="opencv")
    assert np.array_equal(load_episodes(upright)[0].rgb, eps[0].rgb)
    unsaid = write_libero(tmp_path / "b.hdf5", eps[:1], convention="")
    with pytest.raises(EpisodeError, match=r"b.hdf5:/data: attribute macros_image_convention is"):
        load_episodes(unsaid)
    ep = load_episodes(unsaid, DataSource(image_convention="opengl"))[0]
    assert np.array_equal(ep.rgb, eps[0].rgb)
    with pytest.raises(
        EpisodeError,
        match=r"demo_0 model_file: no camera named 'birdview'.*"
        r"\['agentview', 'frontview'\]",
    ):
        load_episodes(upright, DataSource(camera="birdview", image_key="agentview_rgb"))
    with pytest.raises(EpisodeError, match=r"demo_0: no obs/frontview_rgb or obs/frontview_image"):
        load_episodes(upright, DataSource(camera="frontview"))


# -- LeRobot v3.0 ---------------------------------------------------------------------------


def test_lerobot_v3(tmp_path, eps):
    root = write_lerobot(tmp_path / "ds", eps)
    with pytest.raises(EpisodeError, match=r"store no camera calibration.*--calibration"):
        load_episodes(root)
    calib = write_calibration(tmp_path / "calib.json", eps[0])
    back = load_episodes(root, DataSource(calibration=str(calib)))
    assert [len(e) for e in back] == [len(e) for e in eps]
    for a, b in zip(eps, back, strict=True):
        # H.264 at crf 10: the right frames (a wrong frame differs by far more: the disc moves)
        assert np.abs(b.rgb.astype(int) - a.rgb).mean() < 3.0
        np.testing.assert_allclose(b.eef_pos, a.eef_pos, atol=1e-6)  # float32 storage
        _same_rotation(b.eef_quat, a.eef_quat, atol=1e-6)
        np.testing.assert_array_equal(b.gripper, a.gripper)
        np.testing.assert_allclose(b.K, a.K)
        np.testing.assert_allclose(b.T_world_cam, a.T_world_cam)
        np.testing.assert_allclose(b.time, a.time, atol=1e-6)
    wrong = DataSource(calibration=str(calib), state_key="observation.eef")
    with pytest.raises(EpisodeError, match=r"no feature 'observation.eef'; features: \["):
        load_episodes(root, wrong)
    quat = DataSource(calibration=str(calib), eef_rot="quat_xyzw")
    with pytest.raises(EpisodeError, match="--eef-rot quat_xyzw needs 4 values, the slice has 3"):
        load_episodes(root, quat)


# -- rosbag2 as a real arm records it -------------------------------------------------------


def test_realsense_bag_tf_and_compressed_images(tmp_path, eps):
    ep = eps[0]
    bag = write_realsense_bag(tmp_path / "ep_0", ep)
    reports: list = []
    back = load_episodes(bag, REALSENSE, reports=reports)[0]
    r = reports[0]
    assert r.images == r.paired == len(ep) and r.skipped_no_tf == 0
    assert np.abs(back.rgb.astype(int) - ep.rgb).mean() < 3.0  # JPEG, RGB order kept
    np.testing.assert_allclose(back.K, ep.K)
    np.testing.assert_allclose(back.T_world_cam, ep.T_world_cam, atol=1e-9)  # /tf_static chain
    # images are 4 ms after their /tf sample: the EEF is interpolated at the image stamp
    frac = 0.004 / (ep.time[1] - ep.time[0])
    want = ep.eef_pos[:-1] + frac * np.diff(ep.eef_pos, axis=0)
    np.testing.assert_allclose(back.eef_pos[:-1], want, atol=2e-4)
    np.testing.assert_allclose(back.eef_pos[-1], ep.eef_pos[-1], atol=1e-9)  # clipped at the end
    _same_rotation(back.eef_quat, ep.eef_quat, atol=1e-3)
    # gripper from the finger joints, which follow the command one frame late
    np.testing.assert_array_equal(back.gripper, ep.gripper)
    assert back.joints.shape == (len(ep), 7)


def test_bag_problems_are_named(tmp_path, eps):
    ep = eps[1]
    bag = write_realsense_bag(tmp_path / "ep", ep)
    no_gripper = dataclasses.replace(REALSENSE, gripper_from="topic")
    with pytest.raises(
        BagError,
        match=r"no gripper command topic /gripper_command.*"
        r"--gripper-from fingers",
    ):
        load_episodes(bag, no_gripper)
    with pytest.raises(
        BagError,
        match=r"missing topic\(s\) \['/camera/image_raw'.*"
        r"--image-topic one of \['/camera/color/image_raw/compressed'\]",
    ):
        load_episodes(bag, DataSource(gripper_from="fingers", eef_frame="panda_hand_tcp"))
    with pytest.raises(
        BagError, match=r"/tf is a transform tree, not an EEF pose topic.*--eef-frame"
    ):
        load_episodes(bag, dataclasses.replace(REALSENSE, eef_frame="", eef_pose_topic="/tf"))
    with pytest.raises(BagError, match=r"--eef-frame 'tool0' is not connected to --world-frame"):
        load_episodes(bag, dataclasses.replace(REALSENSE, eef_frame="tool0"))
    wrong_type = write_realsense_bag(tmp_path / "typed", ep, image_type="std_msgs/msg/String")
    with pytest.raises(
        BagError,
        match=r"topic /camera/color/image_raw/compressed has type std_msgs/msg/String; the "
        r"image topic must be sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage",
    ):
        load_episodes(wrong_type, REALSENSE)


def test_camera_info_size_is_checked(tmp_path, eps):
    ep = eps[2]
    bag = write_realsense_bag(tmp_path / "big_info", ep, info_hw=(128, 128))  # images 64 px
    with pytest.raises(BagError, match=r"camera_info is 128x128 but the images.* are 64x64"):
        load_episodes(bag, REALSENSE)
    reports: list = []
    rescale = dataclasses.replace(REALSENSE, camera_info_mismatch="rescale")
    back = load_episodes(bag, rescale, reports=reports)[0]
    assert reports[0].rescaled_k == len(ep)
    np.testing.assert_allclose(back.K, ep.K)


def test_distorted_images_are_undistorted_or_refused(tmp_path, eps):
    import cv2

    ep = eps[0]
    d = (-0.4, 0.1, 0.0, 0.0, 0.0)
    bag = write_realsense_bag(tmp_path / "dist", ep, distortion=d)
    reports: list = []
    back = load_episodes(bag, REALSENSE, reports=reports)[0]
    assert reports[0].undistorted == len(ep)
    raw = load_episodes(write_realsense_bag(tmp_path / "plain", ep), REALSENSE)[0]
    want = cv2.undistort(raw.rgb[5], ep.K_at(0), np.asarray(d))
    assert np.abs(back.rgb[5].astype(int) - want).mean() < 1.0
    assert not np.array_equal(back.rgb[5], raw.rgb[5])
    fisheye = write_realsense_bag(
        tmp_path / "fish", ep, distortion=(0.1, 0, 0, 0), distortion_model="equidistant"
    )
    reports = []
    load_episodes(fisheye, REALSENSE, reports=reports)  # the node's rectifier handles it too
    assert reports[0].undistorted == len(ep)
    fov = write_realsense_bag(tmp_path / "fov", ep, distortion=(0.1,), distortion_model="fov")
    with pytest.raises(BagError, match=r"distortion model 'fov' .* cannot be rectified"):
        load_episodes(fov, REALSENSE)


# -- the one source description, para-inspect ----------------------------------------------


def test_every_tool_takes_the_same_source_options():
    import argparse

    from para_ros.data.source import add_source_args, source_from_args

    ap = argparse.ArgumentParser()
    add_source_args(ap)
    a = source_from_args(ap.parse_args([*REALSENSE_ARGS, "--camera_info_mismatch", "rescale"]))
    assert a == dataclasses.replace(
        REALSENSE,
        image_topic="/camera/color/image_raw/compressed",
        camera_info_topic="/camera/color/camera_info",
        camera_info_mismatch="rescale",
    )
    with pytest.raises(ValueError, match="--gripper-from must be one of topic, fingers, none"):
        DataSource(gripper_from="zero")
    from para_ros.replay.cli import build_parser as replay_parser

    flags = {o for a in ap._actions for o in a.option_strings}
    replay = {o for a in replay_parser()._actions for o in a.option_strings}
    assert flags <= replay


def test_para_inspect(tmp_path, eps, capsys):
    bag = write_realsense_bag(tmp_path / "ep_0", eps[0])
    assert inspect_main([str(bag), *REALSENSE_ARGS]) == 0
    out = capsys.readouterr().out
    assert "topic /tf  tf2_msgs/msg/TFMessage" in out
    assert "tf panda_link0 (/tf) -> panda_hand_tcp" in out
    assert f"episode ep_0: {len(eps[0])} frames, 64x64 RGB" in out
    assert "gripper from finger joints" in out and "CHECK" not in out
    assert inspect_main([str(bag)]) == 2  # default topics: says what is missing and how
    out = capsys.readouterr().out
    assert "MISSING/WRONG" in out and "--eef-frame" in out and "Traceback" not in out
