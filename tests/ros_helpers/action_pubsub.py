"""Helper processes for tests/test_ros_exchange.py: publish or receive para_ros/PolicyAction.

python -m tests.ros_helpers.action_pubsub pub TOPIC N
python -m tests.ros_helpers.action_pubsub sub TOPIC TIMEOUT_S   (prints one JSON line)
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from geometry_msgs.msg import Pose, Vector3
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from para_ros.msg import PolicyAction

QOS = QoSProfile(
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)


def make_action(seq: int) -> PolicyAction:
    msg = PolicyAction()
    msg.header.frame_id = "world"
    msg.header.stamp.sec = 1000 + seq
    msg.model_id = "test-model"
    msg.dt = 0.25
    msg.execute_step = 1
    msg.command_published = True
    msg.status = "ok"
    for t in range(3):
        p = Pose()
        p.position.x, p.position.y, p.position.z = 0.1 * t, -0.2, 0.9 + 0.01 * t
        p.orientation.w = 1.0
        msg.poses.append(p)
        msg.rotation_euler.append(Vector3(x=3.14, y=0.0, z=0.5 * t))
    msg.rotation_bins = [10, 11, 12]
    msg.gripper = [-1.0, 0.0, 1.0]
    msg.gripper_bins = [0, 16, 31]
    msg.confidence = [0.5, 0.25, 0.125]
    msg.pixel_u = [10.5, 20.5, 30.5]
    msg.pixel_v = [5.5, 6.5, 7.5]
    msg.height = [0.9, 0.91, 0.92]
    msg.inference_time_ms = 12.5
    msg.image_age_ms = 3.0
    return msg


def to_dict(msg: PolicyAction) -> dict:
    return {
        "frame_id": msg.header.frame_id,
        "stamp_sec": msg.header.stamp.sec,
        "model_id": msg.model_id,
        "dt": msg.dt,
        "execute_step": msg.execute_step,
        "positions": [[p.position.x, p.position.y, p.position.z] for p in msg.poses],
        "rotation_euler": [[v.x, v.y, v.z] for v in msg.rotation_euler],
        "rotation_bins": list(msg.rotation_bins),
        "gripper": list(msg.gripper),
        "confidence": [float(c) for c in msg.confidence],
        "pixel_u": [float(u) for u in msg.pixel_u],
        "height": list(msg.height),
    }


def main() -> int:
    mode, topic = sys.argv[1], sys.argv[2]
    rclpy.init()
    node = rclpy.create_node(f"action_{mode}")
    try:
        if mode == "pub":
            pub = node.create_publisher(PolicyAction, topic, QOS)
            for seq in range(int(sys.argv[3])):
                pub.publish(make_action(seq))
                rclpy.spin_once(node, timeout_sec=0.1)
            return 0
        got: list[PolicyAction] = []
        node.create_subscription(PolicyAction, topic, got.append, QOS)
        deadline = time.monotonic() + float(sys.argv[3])
        while not got and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        if not got:
            print(json.dumps({"error": "nothing received"}))
            return 1
        print(json.dumps(to_dict(got[0])))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
