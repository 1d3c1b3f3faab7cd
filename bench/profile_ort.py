"""Where ONNX Runtime spends the time: its profiler (`SessionOptions.enable_profiling`),
node times summed per op type, one thread, batch 1.

python -m bench.profile_ort model.onnx [other.onnx ...] [--runs 20] [--top 15]
python -m bench.profile_ort --preset vits224 [--optimized]   # random weights, exported here

Prints per model: total node time per run (ms), then op type, ms per run, share, node count.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def blank_feeds(path: str | Path) -> dict:
    """A mid-grey frame and the image centre as the start keypoint, batch 1 (the contract's
    sizes read from the file)."""
    import numpy as np

    from para_ros.core.onnx_metadata import read_spec

    spec = read_spec(path)
    H, W = spec.image.height, spec.image.width
    start = [W / 2, H / 2, (spec.height.min + spec.height.max) / 2]
    if spec.uses_gripper_state:
        start.append(spec.gripper.open_value)
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8),
        "start_keypoint": np.array([start], np.float32),
    }


def profile(path: str | Path, runs: int = 20, warmup: int = 3) -> dict:
    """{"node_ms": total per run, "ops": [{op, ms, share, nodes}], sorted by time}."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = blank_feeds(path)
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_run: list[float] = []
    by_op: dict[str, float] = defaultdict(float)
    nodes: dict[str, set] = defaultdict(set)
    for ev in events:
        if ev.get("cat") == "Session" and ev.get("name") == "model_run":
            per_run.append(ev["dur"] / 1e3)
    skip = warmup  # the profiler records the warm-up runs too: drop them by run order
    run_idx = -1
    for ev in events:
        if ev.get("cat") == "Session" and ev.get("name") == "model_run":
            continue
        if ev.get("cat") != "Node" or not ev["name"].endswith("_kernel_time"):
            if ev.get("cat") == "Session" and ev.get("name") == "SequentialExecutor::Execute":
                run_idx += 1
            continue
        if run_idx < skip:
            continue
        op = ev["args"].get("op_name", "?")
        by_op[op] += ev["dur"] / 1e3
        nodes[op].add(ev["name"])
    n = max(1, run_idx + 1 - skip)
    total = sum(by_op.values()) / n
    ops = sorted(
        (
            {
                "op": k,
                "ms": v / n,
                "share": v / n / total if total else 0.0,
                "nodes": len(nodes[k]),
            }
            for k, v in by_op.items()
        ),
        key=lambda r: -r["ms"],
    )
    return {
        "model": str(path),
        "runs": n,
        "node_ms": total,
        "run_ms_median": float(np.median(per_run[warmup:])) if per_run else None,
        "ops": ops,
    }


def format_profile(rep: dict, top: int = 15) -> str:
    lines = [
        f"{rep['model']}: {rep['node_ms']:.2f} ms of node time per run "
        f"(run median {rep['run_ms_median']:.2f} ms, {rep['runs']} runs)",
        f"  {'op type':<28}{'ms':>8}{'share':>8}{'nodes':>7}",
    ]
    for r in rep["ops"][:top]:
        lines.append(f"  {r['op']:<28}{r['ms']:>8.3f}{r['share']:>8.1%}{r['nodes']:>7}")
    return "\n".join(lines)


def export_preset(preset: str, out_dir: Path) -> tuple[Path, Path]:
    """A random-weight checkpoint of `preset` and its export: (checkpoint dir, model.onnx)."""
    from bench.models import build_checkpoint
    from para_training.export import export_onnx

    ck = build_checkpoint(preset, out_dir)
    path = out_dir / f"{preset}.onnx"
    export_onnx(ck, path)
    return ck, path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("models", nargs="*", help=".onnx files")
    ap.add_argument("--preset", action="append", default=[], help="export this preset first")
    ap.add_argument("--optimized", action="store_true", help="also profile the optimised graph")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="one JSON line per model instead")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(m) for m in args.models]
        for preset in args.preset:
            _, p = export_preset(preset, Path(tmp))
            paths.append(p)
            if args.optimized:
                from para_training.optimize import optimize_onnx

                paths.append(optimize_onnx(p, Path(tmp) / f"{preset}.opt.onnx"))
        for p in paths:
            rep = profile(p, runs=args.runs)
            print(json.dumps(rep) if args.json else format_profile(rep, args.top), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
