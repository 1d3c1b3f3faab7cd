"""`para-replay-timed BAG`: play a bag into the live node at recorded timing and measure it.

Publishes every message of the bag at its recorded time (divided by --rate) with /clock, so a
node started with use_sim_time:=true sees the recorded stamps as current. Records the node's
~/action replies (and writes them to <out>/outputs.mcap), and reports end-to-end latency
(image published -> PolicyAction with that image's stamp received, wall clock) and dropped
frames (images without a reply). Start the node first, e.g.
    para-deploy --model model.onnx --use-sim-time

Bags as real arms record them keep the EEF and the camera only in /tf and /tf_static: they are
played as recorded (/tf_static latched, like static_transform_publisher), so a node started
with eef_frame (and camera_pose_source tf) looks them up itself. Alternatively `--derive-poses`
reads the bag with the same data-source options as para-train and
para-replay-eval (`--eef-frame`, `--camera-frame`, `--camera-pose`, ...) and publishes, just
before each image, the EEF pose and the camera pose the reader derived for it (PoseStamped in
the world frame, at the image's stamp) on `--eef-pose-out` and `--camera-pose-out`; run the node
with eef_pose_topic/camera_pose_topic set to those (and image_transport:=compressed for a
CompressedImage topic).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from para_ros.data.source import add_source_args, source_from_args
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


def derived_poses(
    bag: Path, source, msgs: list, eef_topic: str, camera_topic: str, world_frame: str
) -> list[tuple[int, str, str, bytes]]:
    """PoseStamped messages (bag time ns, topic, type, CDR) of the EEF and the camera at each
    image the reader pairs, timed 1 ns before that image's bag time."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.serialization import deserialize_message, serialize_message
    from scipy.spatial.transform import Rotation

    from para_ros.data.readers import load_episodes

    bag_time = {}  # image header stamp (ns) -> bag time (ns)
    for t, topic, msgtype, raw in msgs:
        if topic == source.image_topic:
            st = deserialize_message(raw, msg_class(msgtype)).header.stamp
            bag_time.setdefault(st.sec * 1_000_000_000 + st.nanosec, t)
    stamps = np.array(sorted(bag_time))
    out = []

    def pose(t_ns: int, pos, quat) -> bytes:
        m = PoseStamped()
        m.header.frame_id = world_frame
        m.header.stamp.sec, m.header.stamp.nanosec = divmod(int(t_ns), 1_000_000_000)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, pos)
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = map(float, quat)
        return serialize_message(m)

    for ep in load_episodes(bag, source):
        for i in range(len(ep)):
            want = round((ep.meta["t0"] + float(ep.time[i])) * 1e9)
            k = int(np.argmin(np.abs(stamps - want)))
            stamp = int(stamps[k])  # the image's own stamp (float seconds lose nanoseconds)
            t = bag_time[stamp] - 1
            T = ep.T_world_cam_at(i)
            q_cam = Rotation.from_matrix(T[:3, :3]).as_quat()
            kind = "geometry_msgs/msg/PoseStamped"
            out.append((t, eef_topic, kind, pose(stamp, ep.eef_pos[i], ep.eef_quat[i])))
            out.append((t, camera_topic, kind, pose(stamp, T[:3, 3], q_cam)))
    return out


def replay(
    bag: Path,
    out: Path,
    rate: float = 1.0,
    image_topic: str = "/camera/image_raw",
    action_topic: str = "/para_policy/action",
    settle_s: float = 2.0,
    discovery_s: float = 2.0,
    extra: list[tuple[int, str, str, bytes]] | None = None,
) -> dict:
    """Play `bag` (plus `extra` messages, e.g. derived_poses) into the live node."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    from para_ros.msg import PolicyAction

    msgs = load_messages(bag)
    if not any(topic == image_topic for _, topic, _, _ in msgs):
        raise ValueError(f"{bag}: no messages on {image_topic}")
    if extra:
        msgs = sorted(msgs + list(extra), key=lambda m: m[0])  # stable: bag order kept
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("para_replay_timed", context=ctx)
    qos = QoSProfile(depth=100)
    # /tf_static as static_transform_publisher offers it: a node started late still gets it
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    pubs, not_published = {}, {}
    for _, topic, msgtype, _ in msgs:
        if topic not in pubs and topic not in not_published:
            try:
                pubs[topic] = node.create_publisher(
                    msg_class(msgtype), topic, latched if topic == "/tf_static" else qos
                )
            except ImportError:  # a message package this environment lacks
                not_published[topic] = f"{msgtype}: no Python message package installed"
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
        if topic not in pubs:
            continue
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
        "not_published": not_published,
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
    ap.add_argument("--action-topic", default="/para_policy/action")
    ap.add_argument("-o", "--out", default="timed_replay", help="output folder")
    ap.add_argument(
        "--derive-poses",
        action="store_true",
        help="also publish the EEF and camera poses the reader derives (from /tf, pose "
        "topics or --camera-pose) at each image stamp",
    )
    ap.add_argument("--eef-pose-out", default="/eef_pose", help="topic of derived EEF poses")
    ap.add_argument(
        "--camera-pose-out", default="/camera_pose", help="topic of derived camera poses"
    )
    add_source_args(ap)
    args = ap.parse_args(argv)
    from para_ros.data.episode import EpisodeError
    from para_ros.data.rosbag_io import BagError

    try:
        source = source_from_args(args)
        extra = None
        bag = Path(args.bag)
        if args.derive_poses:
            extra = derived_poses(
                bag,
                source,
                load_messages(bag),
                args.eef_pose_out,
                args.camera_pose_out,
                source.world_frame,
            )
        res = replay(
            bag, Path(args.out), args.rate, source.image_topic, args.action_topic, extra=extra
        )
    except (BagError, EpisodeError, ValueError) as exc:
        print(f"para-replay-timed: {exc}", file=sys.stderr)
        return 2
    lat = res["latency_ms"]
    for topic, why in res["not_published"].items():
        print(f"not published: {topic} ({why})", file=sys.stderr)
    print(
        f"published {res['images_published']} images at {args.rate}x: answered "
        f"{res['images_answered']}, dropped {res['dropped']}; end-to-end latency median "
        f"{lat.get('median', float('nan')):.2f} ms p99 {lat.get('p99', float('nan')):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
