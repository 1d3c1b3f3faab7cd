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

from para_ros.data.source import add_source_args, source_from_args


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-replay-eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "bags",
        nargs="+",
        help="rosbag2 bags (.mcap/.db3 or folders), HDF5 files, LeRobot datasets, episode "
        "folders: any source para-train reads, with the same options",
    )
    ap.add_argument("--model", required=True, help="ONNX model (its PolicySpec is used)")
    ap.add_argument(
        "--oracle",
        action="store_true",
        help="answer with the recorded future instead of running the model",
    )
    ap.add_argument("-o", "--out", default="", help="output folder (default replay_<bag>)")
    ap.add_argument("--every", type=int, default=1, help="evaluate every N-th frame")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    ap.add_argument("--no-progress", action="store_true")
    add_source_args(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from para_ros.core.contract import SpecError
    from para_ros.core.onnx_metadata import read_spec
    from para_ros.data.episode import EpisodeError
    from para_ros.data.readers import load_episodes
    from para_ros.replay.evaluate import OraclePolicy, evaluate_episode
    from para_ros.replay.report import write_report
    from para_ros.runtime.onnx_policy import ModelLoadError, OnnxPolicy

    try:
        source = source_from_args(args)
    except ValueError as exc:
        print(f"para-replay-eval: {exc}", file=sys.stderr)
        return 2
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
        bag_reports: list = []
        try:
            eps = load_episodes([bag], source, reports=bag_reports)
        except (EpisodeError, ValueError) as exc:
            print(f"para-replay-eval: {exc}", file=sys.stderr)
            return 2
        for report in bag_reports:
            print(
                f"{report.path}: {report.images} images, {report.paired} paired with a state, "
                f"{report.skipped_no_state} without a state within {source.tolerance} s, "
                f"{report.skipped_no_tf} outside /tf, {report.skipped_bad_image} unreadable, "
                f"K rescaled for {report.rescaled_k}; gripper from {report.gripper_source}"
            )
        base = Path(bag).name.replace(".mcap", "").replace(".db3", "")
        for k, ep in enumerate(eps):
            name = base if len(eps) == 1 else f"{base}_{ep.name.split('/')[-1]}"
            report = bag_reports[k] if len(bag_reports) == len(eps) else None
            reports[name] = report.__dict__ if report else {"frames": len(ep)}
            bar = None if args.no_progress else (lambda it, n=name: tqdm(it, desc=n))
            results[name] = evaluate_episode(policy, ep, args.every, bar)
            if report and report.skipped_no_state:
                results[name].skipped[f"no state within {source.tolerance} s"] = (
                    report.skipped_no_state
                )
            if report and report.skipped_no_tf:
                results[name].skipped["outside the /tf span"] = report.skipped_no_tf
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
