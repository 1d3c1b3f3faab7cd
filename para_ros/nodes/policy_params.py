"""Parameters of the `para_policy` node: one table, used by the node to declare them (with
descriptions) and by tests to check config/deploy.yaml documents exactly these.
"""

from __future__ import annotations

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
        "sensor_msgs/Image input (rgb8, bgr8, rgba8 or bgra8), sensor-data QoS (best effort, "
        "keep last); with image_transport compressed, <image_topic>/compressed.",
    ),
    Param(
        "image_transport",
        "raw",
        "raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage JPEG/PNG on "
        "<image_topic>/compressed, as image_transport publishes it); decode time is reported as "
        "decode_ms in /diagnostics.",
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
        "sensor_msgs/CameraInfo of the image; subscribed twice, RELIABLE + TRANSIENT_LOCAL "
        "(latched publishers) and BEST_EFFORT (any publisher).",
    ),
    Param(
        "joint_states_topic",
        "joint_states",
        "sensor_msgs/JointState of the arm (best effort, keep last 50).",
    ),
    Param(
        "eef_pose_topic",
        "eef_pose",
        "geometry_msgs/PoseStamped: current EEF pose in world_frame (frame_id required; best "
        "effort, keep last 50).",
    ),
    Param(
        "camera_pose",
        [0.0] * 7,
        "Camera pose world <- camera (OpenCV axes) as x y z qx qy "
        "qz qw (metres, quaternion x y z w). All zeros: use the PolicySpec training camera.",
    ),
    Param(
        "camera_tf_frame",
        "",
        "If set and tf2_ros is importable (ROS installs; not on PyPI), the camera pose is "
        "looked up in tf as world_frame <- this optical frame (OpenCV axes) at the image "
        "stamp; it overrides camera_pose and camera_pose_topic.",
    ),
    Param(
        "camera_pose_topic",
        "",
        "If set, a geometry_msgs/PoseStamped topic (world_frame <- camera, OpenCV axes) that "
        "overrides camera_pose; frames wait for its first message (a calibrated or moving "
        "camera; the LIBERO bridge publishes camera_pose). Latched and live publishers both "
        "work (subscribed like camera_info).",
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
