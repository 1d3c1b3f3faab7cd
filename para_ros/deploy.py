"""`para-deploy`: start the deploy node set where `ros2 launch` is not available (pip installs).

The same nodes, parameter files and overrides as `ros2 launch para_ros deploy.launch.py`: both
read `para_ros.deploy_plan`. Every launch argument `name:=value` is an option `--name value`
here (`--sim` and `--use-sim-time` are flags); `-p`/`-b` override any other parameter of the
policy node / the bridge (as a parameter file would).

    para-deploy [--model model.onnx] [--params-file my.yaml] [-p name:=value ...]
    para-deploy --sim [--episodes 3] [--camera-theta-deg 10.0] [--results-path r.json]

Each node runs in its own process with the full environment (the ROS wheels' bootstrapper
needs it). Lifecycle as in the launch file: para-deploy exits when the bridge has run its
episodes (with the bridge's exit code); when a node dies the others are stopped and
para-deploy exits with its code; SIGINT/SIGTERM are forwarded.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from para_ros.deploy_plan import ARGUMENTS, BRIDGE, POLICY, PlanError, node_environment, plan


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for a in ARGUMENTS:
        flag = "--" + a.name.replace("_", "-")
        if a.kind is bool:
            ap.add_argument(flag, action="store_true", help=a.description)
        else:
            ap.add_argument(
                flag, default=a.default, metavar=a.kind.__name__.upper(), help=a.description
            )
    ap.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a para_policy parameter (repeatable)",
    )
    ap.add_argument(
        "-b",
        "--bridge-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a para_libero_bridge parameter (repeatable)",
    )
    return ap


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    """name -> command line of each node, from the shared plan (PlanError on bad input)."""
    values = {}
    for a in ARGUMENTS:
        v = getattr(args, a.name)
        values[a.name] = ("true" if v else "false") if a.kind is bool else str(v)
    extra = {POLICY: args.param, BRIDGE: args.bridge_param}
    out = {}
    for n in plan(values):
        cmd = [sys.executable, "-m", n.module, *n.ros_args()]
        for ov in extra[n.name]:
            cmd += ["-p", ov]
        out[n.name] = cmd
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cmds = commands(args)
    except PlanError as exc:
        print(f"para-deploy: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, **node_environment(os.environ)}
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in cmds.items()}
    stop = {"flag": False, "signal": 0}

    def forward(signum, _frame):
        stop["flag"] = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signum)

    def interrupted(signum, frame):  # SIGINT/SIGTERM from the user or a supervisor
        stop["signal"] = signum
        forward(signum, frame)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    code = 0
    while procs:
        for name, p in list(procs.items()):
            rc = p.poll()
            if rc is None:
                continue
            del procs[name]
            if name == BRIDGE and not stop["flag"]:
                code = code or rc  # the episodes are done: stop the policy node too
                forward(signal.SIGINT, None)
                continue
            if rc != 0 and not stop["flag"]:
                print(
                    f"para-deploy: {name} exited with code {rc}; stopping the others",
                    file=sys.stderr,
                )
                forward(signal.SIGINT, None)
            code = code or rc  # e.g. the bridge's 1 for a run cut short by an interrupt
        time.sleep(0.05)
    if stop["signal"]:
        name = signal.Signals(stop["signal"]).name
        print(f"para-deploy: interrupted by {name}; nodes stopped", file=sys.stderr)
    # as ros2 launch: 0 when every node ended cleanly (an interrupted deploy that ran no sim),
    # else the first failure's code
    return code


if __name__ == "__main__":
    sys.exit(main())
