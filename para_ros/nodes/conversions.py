"""Stateless ROS message <-> numpy conversions (cv_bridge-style, without cv_bridge)."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, Image

from para_ros.core.image import decode_compressed, image_msg_to_rgb
from para_ros.core.rectify import Calibration


def stamp_to_sec(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB, converted as cv_bridge converts the encoding
    to rgb8 (`para_ros.core.image.ENCODINGS`: colour, mono, YUV 4:2:2, Bayer, 8/16-bit; `step`
    padding and `is_bigendian` respected); ImageFormatError says what is wrong."""
    return image_msg_to_rgb(msg)


def rgb_to_image(rgb: np.ndarray, stamp, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()  # never assign an array
    return msg


def camera_info_to_K(msg: CameraInfo) -> np.ndarray:
    return np.asarray(msg.k, dtype=np.float64).reshape(3, 3)


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG; colour, grey, 16-bit PNG) -> (H, W, 3) uint8 RGB
    (`para_ros.core.image.decode_compressed`)."""
    return decode_compressed(bytes(msg.data), msg.format)


def calibration(msg: CameraInfo) -> Calibration:
    """The rectification-relevant fields of a CameraInfo (hashable: maps are cached by it)."""
    return Calibration(
        width=int(msg.width),
        height=int(msg.height),
        model=msg.distortion_model,
        d=tuple(float(x) for x in msg.d),
        k=tuple(float(x) for x in msg.k),
        r=tuple(float(x) for x in msg.r),
        p=tuple(float(x) for x in msg.p),
    )


def pose_to_arrays(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """-> (position (3,), quaternion (4,) x y z w)."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def make_pose(position, quat_xyzw) -> Pose:
    return Pose(
        position=Point(x=float(position[0]), y=float(position[1]), z=float(position[2])),
        orientation=Quaternion(
            x=float(quat_xyzw[0]),
            y=float(quat_xyzw[1]),
            z=float(quat_xyzw[2]),
            w=float(quat_xyzw[3]),
        ),
    )


def make_pose_stamped(position, quat_xyzw, stamp, frame_id: str) -> PoseStamped:
    msg = PoseStamped(pose=make_pose(position, quat_xyzw))
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def make_vector3(v) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def fill_chunk(msg, chunk) -> None:
    """Copy a decoded ActionChunk (runtime) into a para_ros/PolicyAction's per-step arrays:
    poses (world frame; a step whose ray missed its plane has NaN, sent as 0), euler
    rotations, bins, gripper values, confidence, pixels and heights (msg/PolicyAction.msg)."""
    ch = chunk
    msg.poses = [
        make_pose(np.nan_to_num(p, nan=0.0), q)
        for p, q in zip(ch.positions, ch.quat_xyzw, strict=True)
    ]
    msg.rotation_euler = [make_vector3(e) for e in ch.euler]
    msg.rotation_bins = ch.rotation_bins.reshape(-1).astype(np.int32).tolist()  # euler: T*3
    msg.gripper = ch.gripper.astype(float).tolist()
    msg.gripper_bins = ch.gripper_bins.astype(np.int32).tolist()
    msg.confidence = ch.confidence.astype(np.float32).tolist()
    msg.pixel_u = ch.pixels[:, 0].astype(np.float32).tolist()
    msg.pixel_v = ch.pixels[:, 1].astype(np.float32).tolist()
    msg.height = ch.heights.astype(float).tolist()
