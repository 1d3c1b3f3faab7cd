"""A real-arm graph played from a field recording, one camera frame at a time.

The rosbag in ../shared/field-data/rosbag_realsense_tf was written with `rosbags` the way a
Franka + RealSense arm records it: the EEF only in /tf (panda_link0 -> panda_hand_tcp), the
calibration on /tf_static (world -> panda_link0, world -> camera_link -> camera_color_optical_
frame), JPEG CompressedImage + CameraInfo on realsense2_camera's topics, /joint_states with
panda_joint names. `BagGraph` publishes those messages with the QoS their drivers use
(/tf_static from a transient-local publisher of its own, like static_transform_publisher;
/tf reliable, depth 100, like robot_state_publisher; the camera reliable like realsense2_camera)
and the bag's time on /clock, frame by frame: for each image it sends the /tf and joint samples
up to just past the image stamp, the CameraInfo and the image, then waits for the node's
PolicyAction for that stamp (lock-step, so every frame is answered whatever the machine's load).
With `eef_pose_topic`, the EEF goes out as a PoseStamped instead of /tf, computed here with
pytransform3d (independently of the product's TF buffer).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

FIELD_BAG = Path(__file__).resolve().parents[3] / "shared" / "field-data" / "rosbag_realsense_tf"
IMAGE = "/camera/camera/color/image_raw/compressed"
INFO = "/camera/camera/color/camera_info"


def read_bag(bag: Path) -> list[tuple[float, str, object]]:
    """(stamp seconds, topic, rclpy message) of every message, by header stamp."""
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader

    from para_ros.replay.ros_types import msg_class

    out = []
    with AnyReader([bag]) as reader:
        for conn, _t, raw in reader.messages():
            msg = deserialize_message(bytes(raw), msg_class(conn.msgtype))
            header = msg.transforms[0].header if conn.topic.startswith("/tf") else msg.header
            out.append((header.stamp.sec + header.stamp.nanosec * 1e-9, conn.topic, msg))
    out.sort(key=lambda m: m[0])
    return out


def eef_poses(messages) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """world <- panda_hand_tcp at each image stamp (position, quaternion x y z w), computed
    independently of the product with tf2's interpolation: per edge, translation linear and
    rotation slerp (scipy) between the samples around the stamp, the nearest one outside
    them; edges composed up the parent chain."""
    from scipy.spatial.transform import Rotation, Slerp

    parent, static, series = {}, {}, {}
    for stamp, topic, msg in messages:
        for tr in getattr(msg, "transforms", []):
            t, r = tr.transform.translation, tr.transform.rotation
            sample = (stamp, np.array([t.x, t.y, t.z]), np.array([r.x, r.y, r.z, r.w]))
            parent[tr.child_frame_id] = tr.header.frame_id
            if topic == "/tf_static":
                static[tr.child_frame_id] = sample
            else:
                series.setdefault(tr.child_frame_id, []).append(sample)

    def edge(child: str, stamp: float) -> np.ndarray:
        M = np.eye(4)
        if child in static:
            _, p, q = static[child]
        else:
            ts = np.array([s for s, _, _ in series[child]])
            x = float(np.clip(stamp, ts[0], ts[-1]))
            ps = np.array([p for _, p, _ in series[child]])
            p = np.array([np.interp(x, ts, ps[:, i]) for i in range(3)])
            rots = Rotation.from_quat(np.array([q for _, _, q in series[child]]))
            q = Slerp(ts, rots)([x]).as_quat()[0] if len(ts) > 1 else rots.as_quat()[0]
        M[:3, :3], M[:3, 3] = Rotation.from_quat(q).as_matrix(), p
        return M

    out = {}
    for stamp, topic, _msg in messages:
        if topic == IMAGE:
            T, frame = np.eye(4), "panda_hand_tcp"
            while frame != "world":
                T = edge(frame, stamp) @ T
                frame = parent[frame]
            out[stamp] = (T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat())
    return out


class BagGraph:
    """Publishes a field bag as drivers would, frame by frame (see the module doc)."""

    def __init__(self, bag: Path = FIELD_BAG / "ep_0", eef_pose_topic: str = ""):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, CompressedImage, JointState
        from tf2_msgs.msg import TFMessage

        from para_ros.msg import PolicyAction

        self.messages = read_bag(bag)
        self.eef_pose_topic = eef_pose_topic
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("field_arm", context=self.ctx)
        static_node = rclpy.create_node("static_transform_publisher", context=self.ctx)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.pubs = {
            "/tf": self.node.create_publisher(TFMessage, "/tf", reliable),
            "/tf_static": static_node.create_publisher(TFMessage, "/tf_static", latched),
            "/joint_states": self.node.create_publisher(JointState, "/joint_states", reliable),
            INFO: self.node.create_publisher(CameraInfo, INFO, reliable),
            IMAGE: self.node.create_publisher(CompressedImage, IMAGE, reliable),
        }
        self.pub_eef = (
            self.node.create_publisher(PoseStamped, eef_pose_topic, reliable)
            if eef_pose_topic
            else None
        )
        self.pub_clock = self.node.create_publisher(Clock, "/clock", reliable)
        self.Clock, self.PoseStamped = Clock, PoseStamped
        self._cond = threading.Condition()
        self.actions: dict[float, object] = {}
        self.node.create_subscription(
            PolicyAction, "/para_policy/action", self._on_action, reliable
        )
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(static_node)
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._spin.start()

    def _spin_loop(self):
        while self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                break

    def _on_action(self, msg):
        with self._cond:
            self.actions[msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9] = msg
            self._cond.notify_all()

    def _clock(self, stamp: float) -> None:
        c = self.Clock()
        c.clock.sec, c.clock.nanosec = int(stamp), round((stamp - int(stamp)) * 1e9)
        self.pub_clock.publish(c)

    def wait_for_node(self, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pubs[IMAGE].get_subscription_count() and self.node.count_publishers(
                "/para_policy/action"
            ):
                time.sleep(1.0)  # let the remaining endpoints match
                return True
            time.sleep(0.1)
        return False

    def play(self, answer_timeout: float = 5.0, lead: float = 0.06) -> int:
        """Send every frame; returns how many were answered."""
        eef = eef_poses(self.messages) if self.pub_eef else {}
        for _s, topic, msg in self.messages:
            if topic == "/tf_static":
                self.pubs[topic].publish(msg)
        state = [m for m in self.messages if m[1] in ("/tf", "/joint_states")]
        k = 0
        for stamp, topic, msg in self.messages:
            if topic != IMAGE:
                continue
            self._clock(stamp)
            while k < len(state) and state[k][0] <= stamp + lead:
                self.pubs[state[k][1]].publish(state[k][2])
                k += 1
            if self.pub_eef is not None:
                pos, quat = eef[stamp]
                pose = self.PoseStamped()
                pose.header = msg.header
                pose.header.frame_id = "world"
                p, q = pose.pose.position, pose.pose.orientation
                p.x, p.y, p.z = map(float, pos)
                q.x, q.y, q.z, q.w = map(float, quat)
                self.pub_eef.publish(pose)
            info = next(m for s, t, m in self.messages if t == INFO and abs(s - stamp) < 1e-6)
            self.pubs[INFO].publish(info)
            self.pubs[IMAGE].publish(msg)
            with self._cond:
                self._cond.wait_for(lambda s=stamp: s in self.actions, timeout=answer_timeout)
        return len(self.actions)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()
