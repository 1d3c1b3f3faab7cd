"""`para-eval-sim`: closed-loop evaluation of an ONNX policy in LIBERO, in-process (no ROS).

Per step: render -> OnnxPolicy.infer -> runtime.safety.gate (the node's own gating) -> teleport
servo to the gated target (or hold the current pose when the gate refuses). The ROS path
(para_libero_bridge + para_policy in lock-step) executes exactly the same command, so both give
the same outcomes for the same model and episodes (tests/sim/test_bridge.py checks it).

The executor is the model's (PolicySpec executor) unless a flag overrides it. Lock-step is the
"reach_then_observe" controller; under --controller streaming each command is also bounded by
the speed limits as if frames came every window.dt seconds (frames carry no stamp here).

Settings (seed protocol): in_distribution; viewpoint (--theta/--phi, or a grid); position
(--positions-file with "dx dy" lines, or the seed's train-left/test-right split: --half right).
Sharding: --shard i --num-shards n runs every n-th episode; `para-eval-sim merge` joins shards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from para_ros.core.contract import CONTROLLERS
from para_ros.core.geometry import pose_matrix
from para_ros.core.stats import format_rate, rate
from para_ros.runtime.executor import (
    FROM_MODEL,
    Executor,
    Follower,
    resolve_executor,
    safety_config,
)
from para_ros.runtime.onnx_policy import Observation, ObservationError
from para_ros.runtime.safety import SafetyConfig
from para_ros.sim.layouts import EVAL_LAYOUT_SEEDS, LayoutError
from para_ros.sim.libero_sim import MAX_STEPS
from para_ros.sim.plan import (
    SETTING_KEYS,
    build_layouts,
    episode_plan,
    official_report,
)


def camera_pose_as_published(T: np.ndarray) -> np.ndarray:
    """T_world_cam after the round trip through a PoseStamped (position + quaternion), as the
    node receives it from the bridge: in-process and ROS runs then use identical floats."""
    from scipy.spatial.transform import Rotation

    return pose_matrix(T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat())


def run_episode(
    sim,
    policy,
    init_state,
    safety: SafetyConfig | None = None,
    record_frames: bool = False,
) -> dict:
    """One episode with the node's executor (runtime.executor): infer, decide, follow.

    init_state: an official init-state index or a layouts.Layout; the simulator seeds the
    episode from (its cfg.seed, the layout), recorded as "seed" with the "layout". Frames
    carry no stamp: a streaming `safety` bounds each command by its nominal period."""
    safety = safety or SafetyConfig()
    obs = sim.reset(init_state)
    executor, follower = Executor(safety), Follower(open_gripper=-1.0)  # LIBERO: -1 open
    latency, frames, targets = [], [], []
    while True:
        cmd, res = None, None
        try:
            res = policy.infer(
                Observation(
                    obs.image,
                    obs.K,
                    camera_pose_as_published(obs.T_world_cam),
                    obs.eef_pos,
                    executor.gripper_state,
                )
            )
        except ObservationError:
            pass  # the node skips such a frame: nothing published, the robot holds
        if res is not None:
            latency.append(res.inference_ms)
            cmd, _reason = executor.decide(res.chunk, obs.eef_pos, None, obs.eef_quat)
        target, grip = follower.target(
            None if cmd is None else cmd.position,
            None if cmd is None else cmd.gripper,
            obs.eef_pos,
        )
        targets.append(target.tolist())
        if record_frames:
            frames.append((obs.image, None if res is None else res.chunk.pixels))
        # the predicted orientation; the sim keeps the start one when cfg.zero_rotation
        obs = sim.step_target(target, None if cmd is None else cmd.quat_xyzw, grip)
        outcome = sim.outcome()
        if outcome != "RUNNING":
            break
    out = {
        "init_state": sim.layout.index if sim.layout.source == "official" else None,
        "layout": sim.layout.record(),
        "seed": sim.episode_seed,
        "outcome": outcome,
        "steps": sim.step_count,
        "refused_steps": follower.held,
        "stall_advanced_steps": executor.advanced_steps,
        "targets": targets,
        "setting": dataclasses.asdict(sim.cfg),
        "inference_ms_median": float(np.median(latency)) if latency else None,
        "inference_ms": latency_summary(latency),
    }
    if record_frames:
        out["_frames"] = frames
    return out


def summarise(episodes: list[dict]) -> dict:
    """Outcome counts of finished episodes, the success rate with N and its 95% Wilson
    interval (`ci95`, fractions), and the number of distinct starts (layout x setting)."""
    n = len(episodes)
    counts = {k: sum(e["outcome"] == k for e in episodes) for k in ("PLACE", "GRASP", "MISS")}
    r = rate(counts["PLACE"], n)
    return {
        "n": n,
        **counts,
        "success_rate": r["rate"],
        "ci95": r["ci95"],
        "distinct_starts": len({start_key(e) for e in episodes}),
    }


def start_key(ep: dict) -> str:
    """Identity of an episode's start: its layout and setting (what N counts)."""
    lay = ep.get("layout") or {"source": "official", "index": ep.get("init_state")}
    st = ep.get("setting") or {}
    cell = ",".join(f"{k}={float(st.get(k, 0.0)):g}" for k in SETTING_KEYS)
    return f"{lay['source']}:{lay['index']}|{cell}"


def latency_summary(ms: list[float]) -> dict | None:
    """Median, p95 and max of per-step latencies (milliseconds); None without samples."""
    if not ms:
        return None
    a = np.asarray(ms, dtype=np.float64)
    return {
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
        "n": len(a),
    }


def save_gif(path: Path, frames, spec_hw, min_size: int = 256) -> None:
    """Episode GIF with the predicted trajectory drawn on: `frames` are (image, pixels) with
    pixels (T, 2) in `spec_hw` (H, W) coordinates (or None); images smaller than `min_size`
    are enlarged (nearest) so the overlay stays readable."""
    from PIL import Image, ImageDraw

    imgs = []
    for img, pixels in frames:
        up = max(1, int(np.ceil(min_size / max(img.shape[:2]))))
        im = Image.fromarray(img).resize((img.shape[1] * up, img.shape[0] * up), Image.NEAREST)
        if pixels is not None and len(pixels):
            d = ImageDraw.Draw(im)
            s = up * np.array([img.shape[1] / spec_hw[1], img.shape[0] / spec_hw[0]])
            pts = [tuple(p * s) for p in np.asarray(pixels, dtype=np.float64)]
            if len(pts) > 1:
                d.line(pts, fill=(255, 0, 255), width=2)
            for p in pts:
                d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], outline=(0, 255, 255))
        imgs.append(im)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)


def render_size(args, spec) -> int:
    """The square render size, px: --image-size, or (0) the model's input height."""
    return int(args.image_size or spec.image.height)


def run(args) -> dict:
    from para_ros.runtime.onnx_policy import OnnxPolicy
    from para_ros.sim.libero_sim import LiberoSim, SimConfig, SimError, official_count

    full = episode_plan(args, official_count(args.suite, args.task))  # refuse before loading
    policy = OnnxPolicy(args.model, ["CPUExecutionProvider"], args.threads)
    executor = resolve_executor(policy.spec, executor_overrides(args))
    print(f"executor: {executor.describe()}", flush=True)
    print(f"command bounds: {executor.speed_limit_text()}", flush=True)
    base = SimConfig(
        suite=args.suite,
        task_id=args.task,
        image_size=render_size(args, policy.spec),
        max_steps=args.max_steps,
        zero_rotation=executor.spec.zero_rotation,
        action_scale=args.action_scale,
        seed=args.seed,
    )
    safety = safety_config(executor)
    sim = LiberoSim(base)
    if args.layouts == "fresh":
        fresh, layout_report = build_layouts(sim, args)
    else:
        fresh, layout_report = [], official_report(sim, args)
    plan = full[args.shard :: args.num_shards]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    episodes = []
    t0 = time.perf_counter()
    for k, ep in enumerate(plan):
        overrides = {key: v for key, v in ep.items() if key != "start"}
        sim.cfg = dataclasses.replace(base, **overrides)
        source, idx = ep["start"].split(":")
        start = fresh[int(idx)] if source == "fresh" else int(idx)
        try:
            r = run_episode(sim, policy, start, safety, record_frames=args.gif and k == 0)
        except SimError as exc:
            episodes.append({**ep, "outcome": "REFUSED", "detail": str(exc)})
            continue
        frames = r.pop("_frames", None)
        if frames:
            save_gif(
                out_dir / f"episode_shard{args.shard}.gif",
                frames,
                (policy.spec.image.height, policy.spec.image.width),
            )
        episodes.append(r)
        print(
            f"episode {k + 1}/{len(plan)} {sim.layout.key} (seed {r['seed']}): "
            f"{r['outcome']} in {r['steps']} steps",
            flush=True,
        )
    sim.close()
    return write_results(
        args,
        out_dir,
        episodes,
        t0,
        model_id=policy.model_id,
        via="in_process",
        seed=args.seed,
        layout_report=layout_report,
    )


def executor_overrides(args) -> dict:
    """The executor settings given explicitly on the command line (the rest: the model's)."""
    return {
        "execute_step": args.execute_step,
        "max_step_m": args.max_step,
        "stall_patience": args.stall_patience,
        "zero_rotation": False if args.use_rotation else None,
        "controller": args.controller,
        "max_speed_mps": args.max_speed,
        "max_angular_speed_rps": args.max_angular_speed,
    }


def write_results(args, out_dir: Path, episodes: list[dict], t0: float, **extra) -> dict:
    """results_shard<i>of<n>.json (atomically): the run's episodes and their summary; REFUSED
    or ERROR episodes are listed but not counted."""
    valid = [e for e in episodes if e.get("outcome") in ("PLACE", "GRASP", "MISS")]
    duplicate_starts(valid)
    result = {
        "model": args.model,
        "suite": args.suite,
        "task": args.task,
        **extra,
        "shard": args.shard,
        "num_shards": args.num_shards,
        "summary": summarise(valid),
        "episodes": episodes,
        "seconds": time.perf_counter() - t0,
    }
    path = out_dir / f"results_shard{args.shard}of{args.num_shards}.json"
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


def run_ros(args) -> dict:
    """The same plan through ROS 2: para-deploy --sim per setting cell (lock-step); the
    executor settings given on the command line become node/bridge parameters, the rest come
    from the model in both (the in-process run uses the same executor)."""
    import os
    import subprocess

    from para_ros.core.onnx_metadata import read_spec
    from para_ros.sim.libero_sim import official_count

    if args.layouts != "official":
        raise LayoutError("--ros runs official init states only (the bridge has no fresh layouts)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = episode_plan(args, official_count(args.suite, args.task))
    size = render_size(args, read_spec(args.model))  # the model's, read once
    plan = plan[args.shard :: args.num_shards]
    # one bridge run per setting cell and contiguous block of init states
    cells: dict[tuple, list[int]] = {}
    for ep in plan:
        key = tuple(sorted((k, v) for k, v in ep.items() if k != "start"))
        cells.setdefault(key, []).append(int(ep["start"].split(":")[1]))
    runs = []
    for key, inits in cells.items():
        block = [inits[0]]
        for i in inits[1:]:
            if i == block[-1] + 1:
                block.append(i)
            else:
                runs.append((key, block))
                block = [i]
        runs.append((key, block))
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    episodes, t0 = [], time.perf_counter()
    for n, (key, inits) in enumerate(runs):
        res_path = out_dir / f"ros_cell{n}_shard{args.shard}.json"
        b = [
            f"episodes:={len(inits)}",
            f"first_init:={inits[0]}",
            f"max_steps:={args.max_steps}",
            f"image_size:={size}",
            f"suite:={args.suite}",
            f"task_id:={args.task}",
            f"results_path:={res_path}",
            f"action_scale:={args.action_scale}",
            f"seed:={args.seed}",
        ]
        if args.use_rotation:
            b.append("rotation:=predicted")
        b += [f"{k}:={float(v)}" for k, v in key]
        cmd = [
            sys.executable,
            "-m",
            "para_ros.deploy",
            "--model",
            args.model,
            "--sim",
            "-p",
            f"execute_step:={args.execute_step}",
            "-p",
            f"max_step:={float(args.max_step)}",
            "-p",
            f"stall_patience:={args.stall_patience}",
        ]
        cmd += speed_parameters(args)
        for item in b:
            cmd += ["-b", item]
        subprocess.run(cmd, env=env, check=True)
        episodes += json.loads(res_path.read_text())["episodes"]
    return write_results(args, out_dir, episodes, t0, via="ros2", seed=args.seed)


def speed_parameters(args) -> list[str]:
    """para-deploy `-p` items for the controller and speed bounds given on the command line
    (none when they are the model's: the node then reads them from the contract)."""
    given = [
        ("controller", args.controller, FROM_MODEL["controller"]),
        ("max_speed", float(args.max_speed), FROM_MODEL["max_speed_mps"]),
        ("max_angular_speed", float(args.max_angular_speed), FROM_MODEL["max_angular_speed_rps"]),
    ]
    return [item for name, v, model in given if v != model for item in ("-p", f"{name}:={v}")]


def duplicate_starts(episodes: list[dict]) -> None:
    """ValueError when two episodes share a start (layout and setting): N must count
    distinct starts, so a start is never run twice into one summary."""
    seen: dict[str, int] = {}
    for e in episodes:
        seen[start_key(e)] = seen.get(start_key(e), 0) + 1
    dup = sorted(k for k, c in seen.items() if c > 1)
    if dup:
        raise ValueError(f"episodes repeat starts {dup[:3]}{' ...' if len(dup) > 3 else ''}")


def merge(paths: list[Path], out: Path) -> dict:
    parts = [json.loads(p.read_text()) for p in paths]
    shards = sorted({(p["shard"], p["num_shards"]) for p in parts})
    n = parts[0]["num_shards"]
    if sorted(s for s, _ in shards) != list(range(n)):
        raise ValueError(f"merge needs shards 0..{n - 1}, got {[s for s, _ in shards]}")
    episodes = [e for p in parts for e in p["episodes"]]
    valid = [e for e in episodes if e.get("outcome") in ("PLACE", "GRASP", "MISS")]
    duplicate_starts(valid)
    merged = {
        **{
            k: parts[0].get(k)
            for k in ("model", "model_id", "suite", "task", "seed", "layout_report")
        },
        "summary": summarise(valid),
        "episodes": episodes,
    }
    out.write_text(json.dumps(merged, indent=1))
    return merged


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-eval-sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--model", required=True)
    ap.add_argument("-o", "--out", default="results/eval_sim")
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument(
        "--episodes",
        type=int,
        default=10,
        help="distinct starts per setting cell (official init states are never repeated)",
    )
    ap.add_argument("--first-init", type=int, default=0, help="first official init state")
    ap.add_argument(
        "--layouts",
        default="official",
        choices=["official", "fresh"],
        help="official init states, or fresh layouts from the task's placement sampler "
        f"(seeds in [{EVAL_LAYOUT_SEEDS.start}, {EVAL_LAYOUT_SEEDS.stop}), disjoint from "
        "para-make-demos' training seeds)",
    )
    ap.add_argument(
        "--layout-seed-start",
        type=int,
        default=EVAL_LAYOUT_SEEDS.start,
        help="first fresh layout seed (evaluation range)",
    )
    ap.add_argument(
        "--train-demos",
        nargs="*",
        default=[],
        help="demo HDF5 files the model was trained on: fresh layouts coinciding with one "
        "are skipped; for official init states the results say which ones training saw",
    )
    ap.add_argument(
        "--layout-tolerance-mm",
        type=float,
        default=5.0,
        help="two layouts coincide when every object is within this distance (mm)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed: each episode is seeded from (seed, layout), whatever ran before",
    )
    ap.add_argument("--max-steps", type=int, default=MAX_STEPS, help="policy steps per episode")
    ap.add_argument(
        "--image-size",
        type=int,
        default=0,
        help="square render size, px (0: the model's input size, as its demos were rendered)",
    )
    ap.add_argument(
        "--execute-step",
        type=int,
        default=FROM_MODEL["execute_step"],
        help="chunk step executed per frame (default: the model's executor)",
    )
    ap.add_argument(
        "--max-step",
        type=float,
        default=FROM_MODEL["max_step_m"],
        help="metres per command (default: the model's executor)",
    )
    ap.add_argument(
        "--stall-patience",
        type=int,
        default=FROM_MODEL["stall_patience"],
        help="StallGuard: still steps before executing later chunk steps (0 = off; the "
        "node's stall_patience; default: the model's executor)",
    )
    ap.add_argument(
        "--controller",
        default=FROM_MODEL["controller"],
        choices=[FROM_MODEL["controller"], *CONTROLLERS],
        help="reach_then_observe (the lock-step simulation's) or streaming (commands also "
        "bounded by --max-speed/--max-angular-speed x window.dt); default: the model's executor",
    )
    ap.add_argument(
        "--max-speed",
        type=float,
        default=FROM_MODEL["max_speed_mps"],
        help="streaming: metres per second (0 = the model's executor)",
    )
    ap.add_argument(
        "--max-angular-speed",
        type=float,
        default=FROM_MODEL["max_angular_speed_rps"],
        help="streaming: radians per second (0 = the model's executor)",
    )
    ap.add_argument("--action-scale", type=float, default=1.0)
    ap.add_argument(
        "--use-rotation",
        action="store_true",
        help="execute the predicted rotation (default: the model's executor)",
    )
    ap.add_argument("--theta", type=float, default=0.0, help="viewpoint OOD, degrees")
    ap.add_argument("--phi", type=float, default=0.0)
    ap.add_argument(
        "--azimuths",
        type=int,
        default=1,
        help="viewpoint: this many azimuths evenly over 360 deg (instead of --phi)",
    )
    ap.add_argument("--positions-file", default="", help='position OOD: lines "dx dy" (m)')
    ap.add_argument(
        "--half",
        default="",
        choices=["", "left", "right", "near", "far"],
        help="position OOD on a half of the seed's grid (train left, test right; train "
        "near, test far)",
    )
    ap.add_argument("--grid", type=int, default=4, help="grid per axis for --half")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--num-shards", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gif", action="store_true", help="GIF of the first episode")
    ap.add_argument(
        "--ros",
        action="store_true",
        help="run through ROS 2 instead: para_libero_bridge + para_policy in "
        "lock-step (para-deploy --sim), one bridge run per setting cell",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        ap = argparse.ArgumentParser(prog="para-eval-sim merge")
        ap.add_argument("shards", nargs="+")
        ap.add_argument("-o", "--out", required=True)
        a = ap.parse_args(argv[1:])
        try:
            m = merge([Path(p) for p in a.shards], Path(a.out))
        except ValueError as exc:
            print(f"para-eval-sim merge: {exc}", file=sys.stderr)
            return 2
        s = m["summary"]
        print(json.dumps(s))
        print(f"success {format_rate(s['PLACE'], s['n'])} (95% Wilson)")
        return 0
    args = build_parser().parse_args(argv)
    if not 0 <= args.shard < args.num_shards:
        print(f"para-eval-sim: --shard must be in [0, {args.num_shards})", file=sys.stderr)
        return 2
    for flag in ("max_speed", "max_angular_speed"):
        v = getattr(args, flag)
        if not (np.isfinite(v) and v >= 0):
            name = "--" + flag.replace("_", "-")
            print(f"para-eval-sim: {name} must be > 0 (0 = the model's), got {v}", file=sys.stderr)
            return 2
    from para_ros.runtime.onnx_policy import ModelLoadError
    from para_ros.sim.libero_sim import SimError

    try:
        res = run_ros(args) if args.ros else run(args)
    except (ModelLoadError, SimError, FileNotFoundError, LayoutError) as exc:
        print(f"para-eval-sim: {exc}", file=sys.stderr)
        return 2
    s = res["summary"]
    print(
        f"success {format_rate(s['PLACE'], s['n'])} (95% Wilson), GRASP {s['GRASP']}, "
        f"MISS {s['MISS']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
