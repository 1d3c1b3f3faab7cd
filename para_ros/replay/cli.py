"""`para-replay-eval BAG... --model model.onnx`: score a model on recorded robot data.

Reads .mcap or .db3 bags (one bag = one episode) with the reader training uses, runs the very
runtime and decode path of the node, and writes <out>/report.json, summary.md and PNG plots.
`--oracle` replaces the model by the recorded future itself (checks data and calibration: its
errors are the bin quantisation alone). Exit codes: 0 done, 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-replay-eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("bags", nargs="+", help="rosbag2 folders or .mcap/.db3 files")
    ap.add_argument("--model", required=True, help="ONNX model (its PolicySpec is used)")
    ap.add_argument(
        "--oracle",
        action="store_true",
        help="answer with the recorded future instead of running the model",
    )
    ap.add_argument("-o", "--out", default="", help="output folder (default replay_<bag>)")
    ap.add_argument("--every", type=int, default=1, help="evaluate every N-th frame")
    ap.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="seconds between an image and the state paired with it",
    )
    ap.add_argument(
        "--camera-pose",
        type=float,
        nargs=7,
        metavar="V",
        default=None,
        help="x y z qx qy qz qw (world <- camera) when the bag has no camera pose",
    )
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    ap.add_argument("--no-progress", action="store_true")
    for name, default in (
        ("image", "/camera/image_raw"),
        ("camera-info", "/camera/camera_info"),
        ("eef-pose", "/eef_pose"),
        ("joint-states", "/joint_states"),
        ("gripper", "/gripper_command"),
        ("camera-pose-topic", "/camera_pose"),
    ):
        ap.add_argument(
            f"--{name}" if name.endswith("topic") else f"--{name}-topic",
            default=default,
            help=f"topic (default {default})",
        )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from para_ros.core.contract import SpecError
    from para_ros.core.geometry import pose_matrix
    from para_ros.core.onnx_metadata import read_spec
    from para_ros.replay.evaluate import OraclePolicy, evaluate_episode
    from para_ros.replay.report import write_report
    from para_ros.runtime.onnx_policy import ModelLoadError, OnnxPolicy
    from para_ros.data.rosbag_io import BagError, BagTopics, read_bag

    topics = BagTopics(
        image=args.image_topic,
        camera_info=args.camera_info_topic,
        eef_pose=args.eef_pose_topic,
        joint_states=args.joint_states_topic,
        gripper=args.gripper_topic,
        camera_pose=args.camera_pose_topic,
    )
    T_fixed = None
    if args.camera_pose:
        v = args.camera_pose
        T_fixed = pose_matrix(v[:3], np.asarray(v[3:]) / np.linalg.norm(v[3:]))
    try:
        if args.oracle:
            policy = OraclePolicy(read_spec(args.model))
        else:
            policy = OnnxPolicy(args.model, args.providers, args.threads)
    except (ModelLoadError, SpecError, FileNotFoundError) as exc:
        print(f"para-replay-eval: {exc}", file=sys.stderr)
        return 2
    results, episodes, reports = {}, {}, {}
    for bag in args.bags:
        name = Path(bag).name.replace(".mcap", "").replace(".db3", "")
        try:
            ep, report = read_bag(bag, topics, args.tolerance, T_fixed)
        except BagError as exc:
            print(f"para-replay-eval: {exc}", file=sys.stderr)
            return 2
        reports[name] = report.__dict__
        print(
            f"{bag}: {report.images} images, {report.paired} paired with a state, "
            f"{report.skipped_no_state} without a state within {args.tolerance} s, "
            f"{report.skipped_bad_image} unreadable"
        )
        bar = None if args.no_progress else (lambda it, n=name: tqdm(it, desc=n))
        results[name] = evaluate_episode(policy, ep, args.every, bar)
        results[name].skipped.update(
            {f"no state within {args.tolerance} s": report.skipped_no_state}
            if report.skipped_no_state
            else {}
        )
        episodes[name] = ep
    out = Path(args.out or f"replay_{Path(args.bags[0]).name.split('.')[0]}")
    spec = policy.spec
    meta = {
        "model": str(args.model),
        "model_id": policy.model_id,
        "mode": "oracle" if args.oracle else "model",
        "providers": policy.providers,
        "T": spec.window.steps,
        "dt_s": spec.window.dt,
        "bags": reports,
    }
    write_report(
        out,
        "PARA replay evaluation",
        results,
        episodes,
        meta,
        (spec.image.height, spec.image.width),
    )
    for name, r in results.items():
        s = r.summary
        print(
            f"{name}: {s['frames_evaluated']} frames; val_pix {s.get('val_pix', float('nan')):.2f}"
            f" px, 3D {s.get('val_3d_mm', float('nan')):.1f} mm (median "
            f"{s.get('val_3d_mm_median', float('nan')):.1f}), height "
            f"{s.get('val_height_mm', float('nan')):.1f} mm, gripper acc "
            f"{s.get('val_grip_acc', float('nan')):.3f}, rotation "
            f"{s.get('val_rot_rad', float('nan')):.3f} rad; inference median "
            f"{r.latency_ms['inference'].get('median', 0.0):.2f} ms"
        )
    print(f"wrote {out}/report.json, summary.md and plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
