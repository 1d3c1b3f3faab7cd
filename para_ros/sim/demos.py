"""`para-make-demos`: scripted-expert demonstrations of a LIBERO task as HDF5 for para-train.

Each episode is rolled out without rendering (the expert needs no images: ~4 s), its MuJoCo
states are recorded, and only successful episodes are re-rendered from those states (RECIPES:
much faster than rendering every servo step). Settings follow the seed:
  in_distribution   the official init states
  position          object shifts on a grid over dx in [-0.15, 0] m, dy in [-0.1, 0.1] m
                    (--grid 16 gives the seed's 16 x 16); --half left|right keeps dy < 0 | > 0
  viewpoint         camera orbits on a grid up to --max-theta deg off-axis (8 x 8 by default)
Layouts: --layouts official draws the official init states; --layouts fresh draws new ones
from the task's placement sampler, demo k with layout seed --layout-seed-start + k, which must
lie in the training range (para_ros.sim.layouts.TRAIN_LAYOUT_SEEDS; evaluation seeds are a
disjoint range). Each demo's meta records its layout (source, index, object positions) and
its episode seed.
--recovery F: that fraction of demos start after expert.detour (the arm left away from the
object with the gripper closed on nothing), so the policy learns to go back for it.
Frame time is the policy step index / 20 Hz (one teleport step is one policy step; LIBERO's
native control rate). HDF5 layout: para_ros/data/hdf5_io.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time

import numpy as np

STEP_HZ = 20.0


def settings_grid(setting: str, grid: int, max_theta: float, half: str = "") -> list[dict]:
    """Setting cells (SimConfig overrides). position: shifts (metres) on a grid x grid lattice
    over dx in [-0.15, 0], dy in [-0.1, 0.1]; half left | right keeps dy < 0 | > 0, near | far
    keeps dx > | < -0.075 (the agentview camera looks along -x: far is away from it)."""
    if setting == "in_distribution":
        return [{}]
    if setting == "position":
        cells = [
            {"shift_dx": float(dx), "shift_dy": float(dy)}
            for dx, dy in itertools.product(
                np.linspace(-0.15, 0.0, grid), np.linspace(-0.1, 0.1, grid)
            )
        ]
        if half == "left":
            cells = [c for c in cells if c["shift_dy"] < 0]
        elif half == "right":
            cells = [c for c in cells if c["shift_dy"] > 0]
        elif half == "near":
            cells = [c for c in cells if c["shift_dx"] > -0.075]
        elif half == "far":
            cells = [c for c in cells if c["shift_dx"] < -0.075]
        return cells
    if setting == "viewpoint":
        thetas = np.linspace(max_theta / grid, max_theta, grid)
        phis = np.linspace(0.0, 360.0, grid, endpoint=False)
        return [
            {"camera_theta_deg": float(t), "camera_phi_deg": float(p)}
            for t, p in itertools.product(thetas, phis)
        ]
    raise ValueError(
        f"unknown setting {setting!r}; expected in_distribution, position or viewpoint"
    )


def record_episode(sim, init_state, name: str, recovery_rng=None):
    """Expert rollout without images from an official init state (index) or a
    layouts.Layout; returns (outcome, Episode or None). recovery_rng: a recovery demo, the
    recording starting after `expert.detour` (the arm away from the object, gripper closed)."""
    from para_ros.data.episode import Episode
    from para_ros.sim.expert import detour, run_expert

    obs0 = sim.reset(init_state)
    if recovery_rng is not None:
        detour(sim, recovery_rng)
        sim.step_count = 0  # the episode's step budget starts with the recording
    states = [sim.sim.get_state().flatten().copy()]

    def on_step(_obs, _a):
        states.append(sim.sim.get_state().flatten().copy())

    outcome, observations, actions = run_expert(sim, render=False, on_step=on_step)
    if outcome != "PLACE":
        return outcome, None
    frames, depths = [], []
    for st in states:  # re-render only what is kept
        sim.sim.set_state_from_flattened(st)
        sim.sim.forward()
        frames.append(sim.render())
        depths.append(sim.render_depth_mm())
    acts = np.array(actions)  # (N-1, 8) x y z qx qy qz qw grip
    grip = np.concatenate([acts[:, -1], acts[-1:, -1]])  # command after each frame; hold
    from scipy.spatial.transform import Rotation

    act7 = np.concatenate(
        [acts[:, :3], Rotation.from_quat(acts[:, 3:7]).as_rotvec(), acts[:, 7:]], axis=1
    )
    act7 = np.concatenate([act7, act7[-1:]])
    n = len(observations)
    return outcome, Episode(
        rgb=np.stack(frames),
        depth=np.stack(depths),
        K=obs0.K,
        T_world_cam=obs0.T_world_cam,
        eef_pos=np.stack([o.eef_pos for o in observations]),
        eef_quat=np.stack([o.eef_quat for o in observations]),
        gripper=grip,
        joints=np.stack([o.joints for o in observations]),
        time=np.arange(n) / STEP_HZ,
        name=name,
        language=sim.language,
        meta={
            "actions": act7.tolist(),
            "gripper_qpos": [o.gripper_qpos.tolist() for o in observations],
            "init_state": sim.layout.index if sim.layout.source == "official" else None,
            "layout": sim.layout.record(),
            "seed": sim.episode_seed,
            "recovery": recovery_rng is not None,
            "setting": dataclasses.asdict(sim.cfg),
        },
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-make-demos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-o", "--out", required=True, help="output .hdf5")
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument(
        "--setting",
        default="in_distribution",
        choices=["in_distribution", "position", "viewpoint"],
    )
    ap.add_argument("--episodes", type=int, default=50, help="demos to attempt")
    ap.add_argument("--grid", type=int, default=16, help="grid size per axis")
    ap.add_argument("--half", default="", choices=["", "left", "right", "near", "far"])
    ap.add_argument(
        "--layouts",
        default="official",
        choices=["official", "fresh"],
        help="start from official init states (random index) or fresh sampler layouts",
    )
    ap.add_argument(
        "--layout-seed-start",
        type=int,
        default=0,
        help="fresh: first layout seed (training range, disjoint from evaluation's)",
    )
    ap.add_argument(
        "--recovery",
        type=float,
        default=0.0,
        help="fraction of demos that start after a detour (gripper closed on nothing, away "
        "from the object): the expert going back for it",
    )
    ap.add_argument("--max-theta", type=float, default=25.0, help="viewpoint: degrees")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    from para_ros.data.hdf5_io import write_hdf5
    from para_ros.sim.layouts import LayoutError, check_seed_range
    from para_ros.sim.libero_sim import LiberoSim, SimConfig, SimError

    try:
        if args.layouts == "fresh":
            check_seed_range(args.layout_seed_start, args.episodes, "train")
    except LayoutError as exc:
        print(f"para-make-demos: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    cells = settings_grid(args.setting, args.grid, args.max_theta, args.half)
    try:
        sim = LiberoSim(
            SimConfig(
                suite=args.suite, task_id=args.task, image_size=args.image_size, seed=args.seed
            )
        )
    except SimError as exc:
        print(f"para-make-demos: {exc}", file=sys.stderr)
        return 2
    episodes, failures, refused = [], {}, 0
    t0 = time.perf_counter()
    bar = tqdm(range(args.episodes), desc="demos", disable=args.no_progress)
    for k in bar:
        cell = (
            cells[k % len(cells)]
            if args.setting == "in_distribution"
            else cells[int(rng.integers(len(cells)))]
        )
        sim.cfg = dataclasses.replace(
            SimConfig(
                suite=args.suite, task_id=args.task, image_size=args.image_size, seed=args.seed
            ),
            **cell,
        )
        init = int(rng.integers(len(sim.init_states)))
        if args.layouts == "fresh":
            init = sim.fresh_layout(args.layout_seed_start + k)
        recovery = args.recovery > 0 and rng.uniform() < args.recovery
        try:
            outcome, ep = record_episode(
                sim,
                init,
                f"demo_{k:04d}",
                np.random.default_rng([args.seed, k]) if recovery else None,
            )
        except SimError:
            refused += 1
            continue
        if ep is None:
            failures[outcome] = failures.get(outcome, 0) + 1
        else:
            episodes.append(ep)
        bar.set_postfix(kept=len(episodes), failed=sum(failures.values()), refused=refused)
    sim.close()
    if not episodes:
        print(
            "para-make-demos: the expert succeeded in no episode; nothing written", file=sys.stderr
        )
        return 1
    write_hdf5(
        args.out,
        episodes,
        env_args={
            "suite": args.suite,
            "task": args.task,
            "setting": args.setting,
            "grid": args.grid,
            "half": args.half,
            "layouts": args.layouts,
            "recovery": args.recovery,
            "layout_seeds": [args.layout_seed_start, args.layout_seed_start + args.episodes]
            if args.layouts == "fresh"
            else None,
            "language": sim.language,
        },
    )
    print(
        f"wrote {len(episodes)} demos ({sum(len(e) for e in episodes)} frames) to "
        f"{args.out}; expert failures {failures or 0}, refused shifts {refused}; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
