"""The scripted expert solves task 0; generated HDF5 demos round-trip through the reader."""

from __future__ import annotations

import numpy as np

from para_ros.core import geometry
from para_ros.data.readers import load_episodes
from para_ros.sim.demos import main as make_demos
from para_ros.sim.expert import run_expert


def test_expert_solves_task0_on_official_init_states(sim):
    outcomes = []
    for init in range(10):
        sim.reset(init)
        outcome, _, _ = run_expert(sim)
        outcomes.append(outcome)
    assert outcomes.count("PLACE") >= 9, outcomes


def test_demos_round_trip_through_the_training_reader(tmp_path):
    out = tmp_path / "demos.hdf5"
    assert (
        make_demos(["-o", str(out), "--episodes", "2", "--image-size", "64", "--no-progress"]) == 0
    )
    eps = load_episodes(out)
    assert len(eps) == 2
    ep = eps[0]
    assert ep.rgb.shape[1:] == (64, 64, 3) and ep.rgb.dtype == np.uint8
    assert "black bowl" in ep.language
    assert set(np.unique(ep.gripper)) <= {-1.0, 1.0} and (ep.gripper == 1.0).any()
    # the stored camera sees the stored EEF: every frame projects inside the image
    uv, depth = geometry.project(ep.eef_pos, ep.K_at(0), ep.T_world_cam_at(0))
    assert (depth > 0).all() and geometry.in_image(uv, (64, 64)).all()
    assert np.allclose(np.diff(ep.time), 1 / 20.0)
    # depth registered to rgb, millimetres: back-projected, a large share of the pixels lies
    # on LIBERO's table top (z = 0.90 m), and no pixel is without a reading
    assert ep.depth.shape == (len(ep), 64, 64) and ep.depth.dtype == np.uint16
    assert (ep.depth > 0).all()
    v, u = np.mgrid[0:64, 0:64] + 0.5
    rays = np.stack([u, v, np.ones_like(u)], -1) @ geometry.inverse_intrinsics(ep.K_at(0)).T
    T = ep.T_world_cam_at(0)
    world = T[:3, 3] + (ep.depth[0] / 1000.0)[..., None] * (rays @ T[:3, :3].T)  # (64, 64, 3)
    on_table = np.abs(world[..., 2] - 0.90) < 0.01
    assert on_table.mean() > 0.3, on_table.mean()


def test_fresh_layout_demos_record_training_seeds(tmp_path, capsys):
    from para_ros.sim.layouts import EVAL_LAYOUT_SEEDS, TRAIN_LAYOUT_SEEDS, training_layouts

    out = tmp_path / "fresh.hdf5"
    args = ["-o", str(out), "--episodes", "1", "--image-size", "64", "--no-progress"]
    assert make_demos([*args, "--layouts", "fresh", "--layout-seed-start", "20"]) == 0
    ep = load_episodes(out)[0]
    lay = ep.meta["layout"]
    assert lay["source"] == "fresh" and lay["index"] == 20 and lay["index"] in TRAIN_LAYOUT_SEEDS
    assert ep.meta["init_state"] is None and isinstance(ep.meta["seed"], int)
    assert set(lay["object_xy"]) >= {"akita_black_bowl_1", "plate_1"}
    [(key, xy)] = training_layouts([str(out)], official=[])
    assert "fresh:20" in key and xy == lay["object_xy"]
    # evaluation seeds are refused for training, before any simulator is built
    bad = tmp_path / "bad.hdf5"
    start = str(EVAL_LAYOUT_SEEDS.start)
    assert make_demos(["-o", str(bad), "--layouts", "fresh", "--layout-seed-start", start]) == 2
    assert "train layout seeds must lie in [0, 1000000)" in capsys.readouterr().err
    assert not bad.exists()


def test_recovery_demos_start_away_with_an_empty_closed_gripper(tmp_path):
    """--recovery 1: every demo starts after expert.detour: the fingers closed on nothing and
    the EEF away from the grasp, then the expert opens, goes back and places."""
    out = tmp_path / "recovery.hdf5"
    args = ["-o", str(out), "--episodes", "3", "--image-size", "64", "--no-progress"]
    assert make_demos([*args, "--recovery", "1", "--layouts", "fresh"]) == 0
    eps = load_episodes(out)
    assert len(eps) >= 2  # the expert places from most detours
    plain = load_episodes_first_frame_gap(tmp_path)
    for ep in eps:
        assert ep.meta["recovery"] is True
        gap = np.abs(np.asarray(ep.meta["gripper_qpos"][0])).sum()
        assert gap < plain * 0.5, (gap, plain)  # fingers closed at the first frame
        assert ep.gripper[0] == -1.0  # ... and the first command opens them
        bowl = np.asarray(ep.meta["layout"]["object_xy"]["akita_black_bowl_1"])
        assert np.linalg.norm(ep.eef_pos[0, :2] - bowl) < 0.35


def load_episodes_first_frame_gap(tmp_path) -> float:
    """Finger opening (sum of |gripper_qpos|) at the first frame of an ordinary demo."""
    out = tmp_path / "plain.hdf5"
    args = ["-o", str(out), "--episodes", "1", "--image-size", "64", "--no-progress"]
    assert make_demos([*args, "--layouts", "fresh"]) == 0
    return float(np.abs(np.asarray(load_episodes(out)[0].meta["gripper_qpos"][0])).sum())
