"""`para-deploy`: start the deploy node set with the same YAML as deploy.launch.py.

For pip installs, where `ros2 launch` is not available (launch/launch_ros are not on PyPI).
On a ROS 2 install, `ros2 launch para_ros deploy.launch.py model:=M` does the same.

    para-deploy [--model model.onnx] [--params-file config/deploy.yaml] [-p name:=value ...]

Each node runs in its own process with the full environment (the ROS wheels' bootstrapper
needs it), is stopped with SIGINT/SIGTERM when para-deploy is, and para-deploy exits with the
first non-zero exit code of its nodes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from para_ros.resources import config_file


def node_command(module: str, params_file: str, overrides: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", module, "--ros-args", "--params-file", params_file]
    for ov in overrides:
        cmd += ["-p", ov]
    return cmd


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--model",
        default="",
        help="ONNX model exported by para-export (default: the shipped "
        "models/para_libero_spatial_t0/model.onnx)",
    )
    ap.add_argument(
        "--params-file",
        default="",
        help="para_policy YAML (default: the package's config/deploy.yaml)",
    )
    ap.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a para_policy parameter (repeatable)",
    )
    ap.add_argument("--use-sim-time", action="store_true", help="use /clock")
    ap.add_argument(
        "--sim",
        action="store_true",
        help="also run para_libero_bridge (LIBERO closed loop); para-deploy "
        "exits when the bridge has run its episodes",
    )
    ap.add_argument(
        "--bridge-params-file",
        default="",
        help="para_libero_bridge YAML (default: config/libero_bridge.yaml)",
    )
    ap.add_argument(
        "-b",
        "--bridge-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a bridge parameter (repeatable)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.model:
        from para_ros.resources import model_file

        try:
            args.model = str(model_file())
        except FileNotFoundError as exc:
            print(f"para-deploy: no --model given and {exc}", file=sys.stderr)
            return 2
    if not os.path.isfile(args.model):
        print(f"para-deploy: model {args.model} does not exist", file=sys.stderr)
        return 2
    params = args.params_file or str(config_file("deploy.yaml"))
    overrides = [f"model_path:={os.path.abspath(args.model)}", *args.param]
    if args.use_sim_time:
        overrides.append("use_sim_time:=true")
    env = dict(os.environ)
    # 448x448 RGB frames exceed Fast DDS's default shared-memory segment (RECIPES).
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    if args.sim:
        overrides.append("camera_pose_topic:=camera_pose")  # the bridge's (orbited) camera
    procs = {
        "para_policy": subprocess.Popen(
            node_command("para_ros.nodes.policy_node", params, overrides), env=env
        )
    }
    if args.sim:
        bparams = args.bridge_params_file or str(config_file("libero_bridge.yaml"))
        procs["para_libero_bridge"] = subprocess.Popen(
            node_command("para_ros.nodes.libero_bridge", bparams, args.bridge_param), env=env
        )
    stop = {"flag": False}

    def forward(signum, _frame):
        stop["flag"] = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = 0
    while procs:
        for name, p in list(procs.items()):
            rc = p.poll()
            if rc is None:
                continue
            del procs[name]
            if name == "para_libero_bridge" and not stop["flag"]:
                code = code or rc  # the episodes are done: stop the policy node too
                forward(signal.SIGINT, None)
                continue
            if rc != 0 and not stop["flag"]:
                print(
                    f"para-deploy: {name} exited with code {rc}; stopping the others",
                    file=sys.stderr,
                )
                code = code or rc
                forward(signal.SIGTERM, None)
        time.sleep(0.05)
    return code


if __name__ == "__main__":
    sys.exit(main())
