"""`para-replay-timed BAG`: play a bag into the live node at recorded timing and measure it.

Publishes every message of the bag at its recorded time (divided by --rate) with /clock, so a
node started with use_sim_time:=true sees the recorded stamps as current. Records the node's
~/action replies (and writes them to <out>/outputs.mcap), and reports end-to-end latency
(image published -> PolicyAction with that image's stamp received, wall clock) and dropped
frames (images without a reply). Start the node first, e.g.
    para-deploy --model model.onnx --use-sim-time
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from para_ros.replay.ros_types import msg_class, typestore


def load_messages(bag: Path) -> list[tuple[int, str, str, bytes]]:
    """(bag time ns, topic, msgtype, raw CDR) of every message, in bag order."""
    from rosbags.highlevel import AnyReader

    from para_ros.data.rosbag_io import BagError

    out = []
    try:
        with AnyReader([bag], default_typestore=typestore()) as reader:
            for conn, t, raw in reader.messages():
                out.append((t, conn.topic, conn.msgtype, bytes(raw)))
    except Exception as exc:
        raise BagError(
            f"{bag}: cannot read the bag completely ({type(exc).__name__}: "
            f"{exc}); read {len(out)} messages before the error"
        ) from exc
    return out


def replay(
    bag: Path,
    out: Path,
    rate: float = 1.0,
    image_topic: str = "/camera/image_raw",
    action_topic: str = "/para_policy/action",
    settle_s: float = 2.0,
    discovery_s: float = 2.0,
) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    from para_ros.msg import PolicyAction

    msgs = load_messages(bag)
    if not any(topic == image_topic for _, topic, _, _ in msgs):
        raise ValueError(f"{bag}: no messages on {image_topic}")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("para_replay_timed", context=ctx)
    qos = QoSProfile(depth=100)
    pubs = {}
    for _, topic, msgtype, _ in msgs:
        if topic not in pubs:
            pubs[topic] = node.create_publisher(msg_class(msgtype), topic, qos)
    clock_pub = node.create_publisher(Clock, "/clock", qos)
    replies: list[tuple[float, bytes]] = []
    lock = threading.Lock()

    def on_action(raw: bytes) -> None:
        with lock:
            replies.append((time.time(), raw))

    node.create_subscription(PolicyAction, action_topic, on_action, qos, raw=True)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spinning = threading.Thread(target=lambda: _spin(executor, ctx), daemon=True)
    spinning.start()
    time.sleep(discovery_s)  # let discovery match publishers and the node's subscriptions
    sent: dict[tuple[int, int], float] = {}
    t_bag0 = msgs[0][0]
    t_wall0 = time.monotonic()
    for t_ns, topic, msgtype, raw in msgs:
        due = t_wall0 + (t_ns - t_bag0) * 1e-9 / rate
        time.sleep(max(0.0, due - time.monotonic()))
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = divmod(t_ns, 1_000_000_000)
        clock_pub.publish(clock)
        pubs[topic].publish(raw)
        if topic == image_topic:
            msg = deserialize_message(raw, msg_class(msgtype))
            sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.time()
    time.sleep(settle_s)
    executor.shutdown()
    node.destroy_node()
    ctx.try_shutdown()
    spinning.join(timeout=5)

    latency, matched = [], set()
    for t_rx, raw in replies:
        a = deserialize_message(raw, PolicyAction)
        key = (a.header.stamp.sec, a.header.stamp.nanosec)
        if key in sent and key not in matched:
            matched.add(key)
            latency.append((t_rx - sent[key]) * 1e3)
    out.mkdir(parents=True, exist_ok=True)
    _write_outputs(out / "outputs", replies, action_topic)
    lat = np.asarray(latency)
    result = {
        "bag": str(bag),
        "rate": rate,
        "images_published": len(sent),
        "replies": len(replies),
        "images_answered": len(matched),
        "dropped": len(sent) - len(matched),
        "drop_rate": (len(sent) - len(matched)) / max(len(sent), 1),
        "latency_ms": {}
        if not len(lat)
        else {
            "median": float(np.median(lat)),
            "p90": float(np.percentile(lat, 90)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        },
    }
    (out / "timed_replay.json").write_text(json.dumps(result, indent=2))
    return result


def _spin(executor, ctx) -> None:
    while ctx.ok():
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception:  # shut down while spinning
            break


def _write_outputs(path: Path, replies: list[tuple[float, bytes]], topic: str) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    if path.exists():
        import shutil

        shutil.rmtree(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, "para_ros/msg/PolicyAction", typestore=typestore())
        for t_rx, raw in replies:
            w.write(conn, int(t_rx * 1e9), raw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-replay-timed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("bag", help="rosbag2 folder or .mcap/.db3")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument(
        "--image-topic", "--image_topic", dest="image_topic", default="/camera/image_raw"
    )
    ap.add_argument("--action-topic", default="/para_policy/action")
    ap.add_argument("-o", "--out", default="timed_replay", help="output folder")
    args = ap.parse_args(argv)
    from para_ros.data.rosbag_io import BagError

    try:
        res = replay(
            Path(args.bag), Path(args.out), args.rate, args.image_topic, args.action_topic
        )
    except (BagError, ValueError) as exc:
        print(f"para-replay-timed: {exc}", file=sys.stderr)
        return 2
    lat = res["latency_ms"]
    print(
        f"published {res['images_published']} images at {args.rate}x: answered "
        f"{res['images_answered']}, dropped {res['dropped']}; end-to-end latency median "
        f"{lat.get('median', float('nan')):.2f} ms p99 {lat.get('p99', float('nan')):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
