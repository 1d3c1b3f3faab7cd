"""Parameters of the `para_policy` node: one table, used by the node to declare them (with
descriptions) and by tests to check config/deploy.yaml documents exactly these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str


PARAMS: tuple[Param, ...] = (
    Param(
        "model_path",
        "",
        "ONNX model exported by para-export (the PolicySpec is read from its metadata). Required.",
    ),
    Param(
        "providers",
        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        "ONNX Runtime execution providers, tried in this order; the ones in use are logged "
        "and reported in /diagnostics.",
    ),
    Param("threads", 1, "ONNX Runtime intra-op threads (CPU provider)."),
    Param(
        "world_frame",
        "world",
        "Frame id of the world; must equal the model's PolicySpec camera.world_frame.",
    ),
    Param("expected_model_id", "", "If set, refuse to start unless the model's id equals it."),
    Param(
        "image_topic",
        "image",
        "Image topic, as `ros2 topic list` shows it or as image_transport names its base: "
        "sensor_msgs/Image (encodings: para_ros/core/image.py), sensor-data QoS (best effort, "
        "keep last). A name ending in /compressed is the compressed transport's topic itself "
        "(sensor_msgs/CompressedImage).",
    ),
    Param(
        "image_transport",
        "raw",
        "raw (sensor_msgs/Image on image_topic) or compressed (sensor_msgs/CompressedImage "
        "JPEG/PNG on <image_topic>/compressed, as image_transport publishes it); decode time is "
        "reported as decode_ms in /diagnostics.",
    ),
    Param(
        "distortion",
        "rectify",
        "A CameraInfo with non-zero d: rectify (OpenCV remap to the pinhole camera of its P; "
        "plumb_bob, rational_polynomial, equidistant) or refuse (every frame skipped with the "
        "reason: for images that must already be rectified).",
    ),
    Param(
        "expected_image_rate",
        0.0,
        "Hz the camera should deliver; /diagnostics warns below half of it (frames lost in "
        "transport). 0: not checked.",
    ),
    Param(
        "future_tolerance",
        0.1,
        "Seconds an image stamp may be ahead of the node's clock (unsynchronised clocks are "
        "refused beyond it).",
    ),
    Param(
        "clock_jump_threshold",
        1.0,
        "Seconds: a clock that jumps back more than this (a looped bag) resets the node's "
        "history (state buffers, last frame, executor).",
    ),
    Param(
        "camera_info_topic",
        "camera_info",
        "sensor_msgs/CameraInfo of the image; the subscription takes the QoS of the publishers "
        "it finds (transient local for latched ones, else best effort: no QoS mismatch).",
    ),
    Param(
        "joint_states_topic",
        "joint_states",
        "sensor_msgs/JointState of the arm (best effort, keep last 50).",
    ),
    Param(
        "eef_frame",
        "",
        "TF frame of the EEF (e.g. panda_hand_tcp, tool0): when set, the current EEF pose is "
        "world_frame <- eef_frame looked up in /tf + /tf_static at the image stamp "
        "(interpolated, within state_tolerance) and eef_pose_topic is not used. '' = the "
        "eef_pose_topic PoseStamped.",
    ),
    Param(
        "eef_pose_topic",
        "eef_pose",
        "geometry_msgs/PoseStamped: current EEF pose in world_frame (frame_id required; best "
        "effort, keep last 50); used when eef_frame is ''.",
    ),
    Param(
        "camera_pose_source",
        "",
        "Where the camera pose (world <- camera, OpenCV optical axes) comes from: tf "
        "(world_frame <- camera_frame in /tf + /tf_static at the image stamp: the hand-eye "
        "calibration), topic (camera_pose_topic), parameter (camera_pose), training_camera (the "
        "model's PolicySpec camera: only right where the training camera is, e.g. the LIBERO "
        "scene), or '' = topic if camera_pose_topic is set, else parameter if camera_pose is "
        "set, else tf. Logged at start and reported in /diagnostics.",
    ),
    Param(
        "camera_frame",
        "",
        "TF frame of the camera's optical frame (z forward, x right, y down; e.g. "
        "camera_color_optical_frame) for camera_pose_source tf. '' = the CameraInfo's "
        "header.frame_id.",
    ),
    Param(
        "camera_pose",
        [0.0] * 7,
        "Camera pose world <- camera (OpenCV axes) as x y z qx qy qz qw (metres, quaternion "
        "x y z w), for camera_pose_source parameter. All zeros: unset.",
    ),
    Param(
        "camera_pose_topic",
        "",
        "A geometry_msgs/PoseStamped topic (world_frame <- camera, OpenCV axes), for "
        "camera_pose_source topic; frames wait for its first message (a calibrated or moving "
        "camera). Latched (transient local) and live publishers both work: the subscription "
        "takes the QoS of the publishers it finds.",
    ),
    Param(
        "camera_matrix",
        [0.0] * 9,
        "Row-major K of the incoming image. All zeros: take K from camera_info.",
    ),
    Param(
        "require_joint_states",
        True,
        "Publish commands only while joint states are fresh and finite.",
    ),
    Param(
        "max_image_age", 0.5, "Seconds: images older than this when inference starts are skipped."
    ),
    Param(
        "state_tolerance",
        0.05,
        "Seconds: EEF pose / joint state must be stamped within this of the image stamp.",
    ),
    Param(
        "watchdog_timeout",
        1.0,
        "Seconds without fresh image/EEF/joint input after which the node holds (publishes no "
        "new command; the controller keeps the last target) and says so in /diagnostics.",
    ),
    Param(
        "execute_step",
        -1,
        "Step of the chunk published as ~/eef_target and ~/gripper_command (0 = the first "
        "future step; -1 = the model's executor, PolicySpec executor.execute_step).",
    ),
    Param(
        "workspace_min",
        [-10.0, -10.0, -10.0],
        "Workspace box lower corner, world metres; targets are clamped into the box.",
    ),
    Param("workspace_max", [10.0, 10.0, 10.0], "Workspace box upper corner, world metres."),
    Param(
        "max_step",
        0.0,
        "Metres: largest translation of one command from the current EEF (0 = the model's "
        "executor, executor.max_step_m).",
    ),
    Param(
        "controller",
        "streaming",
        "What executes ~/eef_target: streaming (a tracking controller, e.g. "
        "cartesian_motion_controller's target frame or MoveIt Servo: each command also moves at "
        "most max_speed x the time since the previous command) or reach_then_observe (each "
        "target is reached before the next image, as in the LIBERO bridge's lock-step). '' = "
        "the model's executor.controller.",
    ),
    Param(
        "max_speed",
        0.0,
        "m/s: streaming controller speed bound (0 = the model's executor.max_speed_mps).",
    ),
    Param(
        "max_angular_speed",
        0.0,
        "rad/s: streaming controller rotation speed bound (0 = the model's "
        "executor.max_angular_speed_rps).",
    ),
    Param(
        "stall_patience",
        -1,
        "StallGuard: after this many consecutive frames with the EEF still (< 2 mm) and the "
        "same gripper command, execute later steps of the chunk (0 = off; -1 = the model's "
        "executor, executor.stall_patience).",
    ),
    Param(
        "min_confidence",
        0.0,
        "Commands whose argmax-voxel probability is below this are not published.",
    ),
    Param(
        "publish_heatmap",
        False,
        "Publish ~/heatmap, an RViz/Foxglove overlay of the "
        "predicted voxel probabilities (costs ~1 ms per frame).",
    ),
    Param("warmup_runs", 3, "Blank inferences before the first command."),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages."),
)

BY_NAME = {p.name: p for p in PARAMS}

CAMERA_POSE_SOURCES = ("tf", "topic", "parameter", "training_camera")
# Parameters every rclpy node takes besides its own (not typos)
ROS_PARAMS = ("use_sim_time", "start_type_description_service")
OTHER_TRANSPORTS = ("compressedDepth", "theora", "zstd", "ffmpeg", "h264")


def unknown_parameters(given: Iterable[str]) -> list[str]:
    """One warning line per parameter name in `given` (from the command line or a parameter
    file) that the node does not declare, with the close names; QoS-overriding parameters
    (`qos_overrides.<topic>...`) and rclpy's own are known."""
    out = []
    for name in sorted(set(given)):
        if name in BY_NAME or name in ROS_PARAMS or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, list(BY_NAME), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        out.append(
            f"unknown parameter {name!r} is ignored{hint} (`para_policy --help` lists them)"
        )
    return out


def image_subscription(topic: str, transport: str) -> tuple[str, str, str]:
    """(topic to subscribe, transport, note) for the image parameters.

    image_transport names its topics <base>/<transport>; `ros2 topic list` shows those full
    names, so a user may give either the base with `image_transport`, or the full name: a
    name ending in /compressed is the compressed topic itself, whatever image_transport says
    (the note says so). Raises ValueError for a transport the node cannot decode."""
    if transport not in ("raw", "compressed"):
        raise ValueError(
            f"parameter image_transport is {transport!r}; expected one of ('raw', 'compressed')"
        )
    base, _, last = topic.rstrip("/").rpartition("/")
    if last in OTHER_TRANSPORTS:
        raise ValueError(
            f"image_topic {topic!r} is an image_transport {last!r} topic, which para_policy "
            "cannot decode: use the raw topic or its /compressed (JPEG/PNG) one"
        )
    if last == "compressed" and base:
        note = "" if transport == "compressed" else " (image_transport raw overridden)"
        return (
            topic.rstrip("/"),
            "compressed",
            (
                f"image_topic {topic!r} is a compressed transport topic: subscribing "
                f"sensor_msgs/CompressedImage there{note}"
            ),
        )
    if transport == "compressed":
        return topic.rstrip("/") + "/compressed", "compressed", ""
    return topic, "raw", ""


def camera_pose_source(source: str, pose: list, pose_topic: str) -> tuple[str, str]:
    """(source, why) for the camera pose parameters; raises ValueError naming the conflict."""
    if source and source not in CAMERA_POSE_SOURCES:
        raise ValueError(
            f"parameter camera_pose_source is {source!r}; expected one of "
            f"{CAMERA_POSE_SOURCES} or '' (automatic)"
        )
    pose_set = any(float(v) != 0.0 for v in pose)
    if not source:
        if pose_topic and pose_set:
            raise ValueError(
                "both camera_pose_topic and camera_pose are set: choose one with "
                "camera_pose_source (topic or parameter)"
            )
        if pose_topic:
            return "topic", "camera_pose_topic is set"
        if pose_set:
            return "parameter", "camera_pose is set"
        return "tf", "neither camera_pose_topic nor camera_pose is set"
    if source == "topic" and not pose_topic:
        raise ValueError("camera_pose_source is topic but camera_pose_topic is empty")
    if source == "parameter" and not pose_set:
        raise ValueError("camera_pose_source is parameter but camera_pose is all zeros")
    return source, "camera_pose_source parameter"
