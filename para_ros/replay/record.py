"""`para-record -o OUT`: record the topics a PARA policy needs (and its outputs) to MCAP.

For pip installs without the rosbag2 CLI. Topics are subscribed as they appear (their types
come from the ROS graph) and written raw, as received. The bag is written to OUT.partial and
renamed to OUT only when closed cleanly (SIGINT/SIGTERM or --duration), so a folder named OUT
is always complete. On a full ROS 2 install the same recording is
    ros2 bag record -s mcap -o OUT /camera/image_raw /camera/camera_info /joint_states \\
        /eef_pose /gripper_command /camera_pose /para_policy/action /para_policy/eef_target \\
        /para_policy/gripper_command
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

DEFAULT_TOPICS = [
    "/camera/image_raw",
    "/camera/camera_info",
    "/joint_states",
    "/eef_pose",
    "/gripper_command",
    "/camera_pose",
    "/para_policy/action",
    "/para_policy/eef_target",
    "/para_policy/gripper_command",
]


def record(out: Path, topics: list[str], duration: float = 0.0) -> dict[str, int]:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosbags.rosbag2 import StoragePlugin, Writer

    from para_ros.nodes.entry import spin_until_shutdown
    from para_ros.replay.ros_types import msg_class, typestore

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rclpy.init()
    node = rclpy.create_node("para_record")
    writer = Writer(partial, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    counts: dict[str, int] = {}
    conns = {}
    # best effort matches both reliable and best-effort publishers (camera drivers use the
    # latter); a recorder must never be the reason a publisher's QoS does not match
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)

    def subscribe_new() -> None:
        for name, types in node.get_topic_names_and_types():
            if name in topics and name not in conns and types:
                conns[name] = writer.add_connection(name, types[0], typestore=typestore())
                counts[name] = 0

                def cb(raw: bytes, name=name) -> None:
                    writer.write(conns[name], time.time_ns(), raw)
                    counts[name] += 1

                node.create_subscription(msg_class(types[0]), name, cb, qos, raw=True)
                node.get_logger().info(f"recording {name} ({types[0]})")

    node.create_timer(0.5, subscribe_new)
    t0 = time.monotonic()
    clean = False
    try:
        spin_until_shutdown(
            lambda: rclpy.spin_once(node, timeout_sec=0.1),
            rclpy.ok,
            lambda: not duration or time.monotonic() - t0 < duration,
        )
        clean = True
    except (KeyboardInterrupt, ExternalShutdownException):
        clean = True
    finally:
        writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
        if clean:
            shutil.rmtree(out, ignore_errors=True)
            partial.rename(out)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-record",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-o", "--out", required=True, help="output bag folder")
    ap.add_argument("--topics", nargs="+", default=DEFAULT_TOPICS)
    ap.add_argument("--duration", type=float, default=0.0, help="seconds (0 = until Ctrl-C)")
    args = ap.parse_args(argv)
    counts = record(Path(args.out), args.topics, args.duration)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    missing = [t for t in args.topics if t not in counts]
    if missing:
        print(f"para-record: never seen: {missing}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
