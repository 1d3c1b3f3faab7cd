"""`para-demo`: the main job. The shipped PARA model drives the robot in LIBERO through ROS 2.

Starts the deploy node set with the simulation bridge (`para-deploy --sim`, the same as
`ros2 launch para_ros deploy.launch.py sim:=true`): para_policy (ONNX Runtime) and
para_libero_bridge in lock-step, separate processes, loopback discovery. Runs a few episodes of
libero_spatial task 0 from the official init states, then prints and writes:

    <out>/results.md         episode table (outcome, steps, latencies) and the summary
    <out>/results.json       the same, machine-readable
    <out>/bridge.json        the bridge's own results (every executed target)
    <out>/episode0.gif       the first episode with the predicted trajectory drawn on it

Latency: `inference` is the node's ONNX Runtime time per frame (from PolicyAction);
`round trip` is observation published -> PolicyAction received by the bridge (both nodes,
DDS transport, decode and gating included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from para_ros.core.stats import format_rate, rate
from para_ros.sim.libero_sim import MAX_STEPS


def bridge_command(args, model: str, image_size: int, out: Path) -> list[str]:
    b = {
        "episodes": args.episodes,
        "first_init": args.first_init,
        "max_steps": args.max_steps,
        "image_size": image_size,
        "task_id": args.task,
        "results_path": str(out / "bridge.json"),
        "gif_path": str(out / "episode0.gif"),
    }
    cmd = [sys.executable, "-m", "para_ros.deploy", "--model", model, "--sim"]
    if args.execute_step >= 0:  # default: the model's executor
        cmd += ["-p", f"execute_step:={args.execute_step}"]
    for k, v in b.items():
        cmd += ["-b", f"{k}:={v}"]
    return cmd


def _fmt(lat: dict | None, key: str) -> str:
    return f"{lat[key]:.1f}" if lat else "-"


def report(bridge: dict, model: str, seconds: float) -> tuple[str, dict]:
    eps = bridge["episodes"]
    rows = [
        "| episode | init state | outcome | steps | inference median / p95 (ms) | "
        "round trip median / p95 (ms) | held steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in eps:
        inf, rt = e.get("inference_ms"), e.get("roundtrip_ms")
        rows.append(
            f"| {e.get('episode', '-')} | {e.get('init_state', '-')} | {e['outcome']} | "
            f"{e.get('steps', '-')} | {_fmt(inf, 'median')} / {_fmt(inf, 'p95')} | "
            f"{_fmt(rt, 'median')} / {_fmt(rt, 'p95')} | {e.get('held_steps', '-')} |"
        )
    s = bridge["summary"]
    med = [e["roundtrip_ms"]["median"] for e in eps if e.get("roundtrip_ms")]
    inf = [e["inference_ms"]["median"] for e in eps if e.get("inference_ms")]
    summary = {
        "model": model,
        **s,
        "success_rate": s["PLACE"] / s["n"] if s["n"] else 0.0,
        "ci95": rate(s["PLACE"], s["n"])["ci95"],
        "inference_ms_median": float(np.median(inf)) if inf else None,
        "roundtrip_ms_median": float(np.median(med)) if med else None,
        "seconds": seconds,
    }
    text = "\n".join(
        [
            f"# para-demo: {Path(model).name} on libero_spatial task 0 through ROS 2 (lock-step)",
            "",
            *rows,
            "",
            f"PLACE {s['PLACE']} / GRASP {s['GRASP']} / MISS {s['MISS']} of {s['n']} episodes "
            f"(success {format_rate(s['PLACE'], s['n'])}, 95% Wilson); "
            f"wall time {seconds:.0f} s.",
            "",
        ]
    )
    return text, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="", help="ONNX model (default: the shipped one)")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--first-init", type=int, default=0, help="first official init state")
    ap.add_argument("--task", type=int, default=0, help="libero_spatial task index")
    ap.add_argument("--max-steps", type=int, default=MAX_STEPS, help="policy steps per episode")
    ap.add_argument(
        "--execute-step",
        type=int,
        default=-1,
        help="para_policy execute_step (default -1: the model's executor, the setting of its "
        "card)",
    )
    ap.add_argument("-o", "--out", default="results/demo")
    args = ap.parse_args(argv)
    from para_ros.core.contract import SpecError
    from para_ros.core.onnx_metadata import read_spec
    from para_ros.resources import model_file

    try:
        model = os.path.abspath(args.model) if args.model else str(model_file())
        spec = read_spec(model)
    except (FileNotFoundError, SpecError) as exc:
        print(f"para-demo: {exc}", file=sys.stderr)
        return 2
    if args.episodes < 1:
        print("para-demo: --episodes must be >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("bridge.json", "results.json", "results.md", "episode0.gif"):
        (out / stale).unlink(missing_ok=True)  # never report an older run's files
    # The sim renders at the model's input size, as the training demos were rendered.
    cmd = bridge_command(args, model, spec.image.height, out)
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # no traffic off this host
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(
        f"para-demo: {args.episodes} episode(s) of libero_spatial task {args.task} with "
        f"{model} through ROS 2 (para_policy + para_libero_bridge, lock-step)",
        flush=True,
    )
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env=env).returncode
    seconds = time.perf_counter() - t0
    bridge_file = out / "bridge.json"
    if not bridge_file.exists():
        print(
            f"para-demo: the deploy node set exited with {rc} and wrote no results",
            file=sys.stderr,
        )
        return 1
    bridge = json.loads(bridge_file.read_text())
    text, summary = report(bridge, model, seconds)
    (out / "results.md").write_text(text)
    tmp = out / "results.json.partial"
    tmp.write_text(json.dumps({"summary": summary, "episodes": bridge["episodes"]}, indent=1))
    tmp.replace(out / "results.json")
    print(text)
    print(f"results: {out}/results.md, GIF: {out}/episode0.gif")
    errors = [e for e in bridge["episodes"] if e.get("outcome") == "ERROR"]
    return 1 if rc != 0 or errors else 0


if __name__ == "__main__":
    sys.exit(main())
