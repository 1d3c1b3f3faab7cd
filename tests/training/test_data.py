"""Readers on real files of each format, the rotation-basis tool, and bad inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from para_ros.core import geometry
from para_ros.data import folder_io, hdf5_io, rosbag_io
from para_ros.data.episode import EpisodeError
from para_ros.data.readers import load_episodes
from para_training.rotation_basis import load_basis
from para_training.rotation_basis import main as basis_main


def _same(a, b, image_exact=True):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.eef_pos, b.eef_pos, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(a.eef_quat * b.eef_quat, 1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(a.gripper, b.gripper)
    np.testing.assert_allclose(a.K_at(0), b.K_at(0))
    np.testing.assert_allclose(a.T_world_cam_at(0), b.T_world_cam_at(0), atol=1e-12)
    np.testing.assert_allclose(a.time, b.time, atol=1e-6)
    assert np.array_equal(np.asarray(a.rgb), np.asarray(b.rgb))


def test_hdf5_round_trip(tmp_path, episodes):
    path = tmp_path / "demos.hdf5"
    hdf5_io.write_hdf5(path, episodes[:3], env_args={"suite": "synthetic"})
    back = load_episodes(path)
    assert [e.name for e in back] == [e.name for e in episodes[:3]]
    for a, b in zip(episodes[:3], back, strict=True):
        _same(a, b)


def test_hdf5_depth_round_trip_and_wrong_units_refused(tmp_path, episodes):
    import h5py

    ep = episodes[0]
    depth = np.random.default_rng(0).integers(1, 3000, (len(ep), *ep.image_hw), dtype=np.uint16)
    with_depth = dataclasses.replace(ep, depth=depth)
    path = tmp_path / "demos.hdf5"
    hdf5_io.write_hdf5(path, [with_depth, episodes[1]])
    back = load_episodes(path)
    assert np.array_equal(back[0].depth, depth) and back[1].depth is None
    with h5py.File(path, "a") as f:  # depth in metres, as float32: refused, not misread
        del f["data/demo_0/obs/agentview_depth"]
        f["data/demo_0/obs"].create_dataset("agentview_depth", data=depth / 1000.0)
    with pytest.raises(EpisodeError, match="expected uint16 millimetres"):
        load_episodes(path)
    with pytest.raises(EpisodeError, match="depth must be"):
        dataclasses.replace(ep, depth=depth[:, :-1])


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_rosbag_round_trip(tmp_path, episodes, suffix):
    bag = rosbag_io.write_bag(tmp_path / f"ep{suffix}", episodes[0])
    ep, report = rosbag_io.read_bag(bag)
    assert report.images == report.paired == len(episodes[0])
    _same(episodes[0], ep)
    assert len(load_episodes(tmp_path)) == 1  # a folder holding one bag


def test_folder_round_trip(tmp_path, episodes):
    for ep in episodes[:2]:
        folder_io.write_folder(tmp_path, ep)
    back = load_episodes(tmp_path)
    for a, b in zip(episodes[:2], back, strict=True):
        _same(a, b)


def test_bag_with_missing_topic_is_named(tmp_path, episodes):
    topics = dataclasses.replace(rosbag_io.BagTopics(), eef_pose="/robot/eef")
    bag = rosbag_io.write_bag(tmp_path / "ep.mcap", episodes[0], topics=topics)
    with pytest.raises(rosbag_io.BagError, match=r"missing topic\(s\) \['/eef_pose'\]"):
        rosbag_io.read_bag(bag)


def test_truncated_bag_is_refused_not_partial(tmp_path, episodes):
    bag = rosbag_io.write_bag(tmp_path / "ep.mcap", episodes[0])
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(rosbag_io.BagError, match="cannot read the bag completely"):
        rosbag_io.read_bag(bag)


def test_hdf5_without_camera_is_refused(tmp_path):
    import h5py

    path = tmp_path / "libero_official.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("data/demo_0")
        g.create_dataset("obs/agentview_rgb", data=np.zeros((2, 8, 8, 3), np.uint8))
        g.create_dataset("actions", data=np.zeros((2, 7)))
    with pytest.raises(EpisodeError, match="no camera/K and camera/T_world_cam"):
        load_episodes(path)


def test_unknown_format(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(EpisodeError, match="unknown data format"):
        load_episodes(tmp_path / "x.txt")


def test_rotation_basis_tool_writes_where_training_reads(tmp_path, episodes, capsys):
    path = tmp_path / "demos.hdf5"
    hdf5_io.write_hdf5(path, episodes[:4])
    assert basis_main([str(path), "--bins", "48"]) == 0
    out = capsys.readouterr().out
    assert "PC1=1.0000" in out and "rad/bin at 48 bins" in out
    spec = load_basis(tmp_path / "demos.rotation_basis.json")
    assert spec.mode == "pca1d" and spec.n_bins == 48 and abs(spec.pca_axis[2]) > 0.99


def test_rotation_basis_gate_and_override(tmp_path, episodes, capsys):
    rng = np.random.default_rng(0)
    eps = []
    for ep in episodes[:4]:  # roll and yaw vary independently: PC1 cannot explain 85 %
        e = np.stack(
            [np.pi + rng.normal(0, 0.5, len(ep)), np.zeros(len(ep)), rng.normal(0, 0.6, len(ep))],
            axis=1,
        )
        eps.append(dataclasses.replace(ep, eef_quat=geometry.euler_to_quat_xyzw(e)))
    path = tmp_path / "demos.hdf5"
    hdf5_io.write_hdf5(path, eps)
    assert basis_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "below the gate 0.85" in err and "--allow-low-variance" in err and "kmeans" in err
    assert not (tmp_path / "demos.rotation_basis.json").exists()
    assert basis_main([str(path), "--allow-low-variance"]) == 0
    assert "WARNING: PC1 ratio" in capsys.readouterr().out
    assert (
        basis_main([str(path), "--mode", "kmeans", "--bins", "16", "-o", str(tmp_path / "k.json")])
        == 0
    )
    assert json.loads((tmp_path / "k.json").read_text())["mode"] == "kmeans"


def test_rotation_basis_names_a_missing_dataset(tmp_path, capsys):
    assert basis_main([str(tmp_path / "nothing.hdf5")]) == 2
    assert "nothing.hdf5: no such file or folder" in capsys.readouterr().err
