"""`para_policy`: camera + robot state in, PARA action chunks and EEF commands out.

A thin adapter: callbacks only store the newest inputs; one worker thread checks the frame
(`core.plausibility`: time, intrinsics, distortion, poses, start keypoint), converts it (raw or
compressed, rectified when the CameraInfo has distortion), calls `OnnxPolicy.infer` (pure
runtime), lets the executor decide (`runtime.executor`: StallGuard + `runtime.safety.gate`, with
the model's executor settings unless parameters override them) and publishes. Nothing it cannot
trust leaves as a command; every skipped frame is counted by reason in /diagnostics.

Subscribes: image or image/compressed (sensor-data QoS), camera_info (and camera_pose_topic)
            with their publishers' QoS, joint_states, and the EEF as /tf + /tf_static
            (eef_frame) or an eef_pose PoseStamped; the camera pose from /tf_static
            (camera_pose_source tf), a topic, a parameter or, when asked, the model's training
            camera.
Publishes:  ~/action (para_ros/PolicyAction, every inference), ~/eef_target (PoseStamped, new
            commands only, bounded per command and, for a streaming controller, by speed),
            ~/gripper_command (Float64), ~/rotation (Vector3Stamped, euler xyz rad),
            ~/trajectory (nav_msgs/Path), ~/heatmap (Image, optional), /diagnostics.
Parameters: para_ros/nodes/policy_params.py (documented in config/deploy.yaml).
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Vector3Stamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import Float64

from para_ros.core.contract import SpecError
from para_ros.core.geometry import lift_point, pose_matrix
from para_ros.core.image import ImageFormatError
from para_ros.core.plausibility import (
    check_camera_sees,
    check_distortion,
    check_eef_height,
    check_intrinsics,
    check_pose,
    check_stamp,
    check_start_keypoint,
    needs_rectification,
)
from para_ros.core.rectify import Rectifier
from para_ros.msg import PolicyAction
from para_ros.nodes import conversions as cv
from para_ros.nodes.entry import (
    enable_stack_dumps,
    ignore_further_interrupts,
    print_help,
    spin_until_shutdown,
)
from para_ros.nodes.policy_params import (
    PARAMS,
    camera_pose_source,
    image_subscription,
    unknown_parameters,
)
from para_ros.nodes.qos_match import MatchingSubscription
from para_ros.nodes.tf_input import TfInput
from para_ros.runtime.executor import Executor, resolve_executor, safety_config
from para_ros.runtime.monitor import (
    InputMonitor,
    LatencyStats,
    RateMeter,
    SkipCounter,
    StampedBuffer,
)
from para_ros.runtime.onnx_policy import ModelLoadError, Observation, ObservationError, OnnxPolicy
from para_ros.runtime.safety import Watchdog


class StartupError(RuntimeError):
    """The node cannot start with these parameters and this model."""


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("para_policy", **kwargs)
        for p in PARAMS:
            self.declare_parameter(
                p.name, p.default, ParameterDescriptor(description=p.description)
            )
        self.unknown_parameters = unknown_parameters(self._parameter_overrides)
        for line in self.unknown_parameters:
            self.get_logger().warning(line)
        P = {p.name: self.get_parameter(p.name).value for p in PARAMS}
        self.P = P
        self._load_model(P)
        self._resolve_executor(P)
        self._resolve_camera(P)
        try:
            image_topic, transport, note = image_subscription(
                P["image_topic"], P["image_transport"]
            )
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        if note:
            self.get_logger().info(note)
        if P["distortion"] not in ("rectify", "refuse"):
            raise StartupError(
                f"parameter distortion is {P['distortion']!r}; expected one of "
                "('rectify', 'refuse')"
            )
        self.K_param = None
        if any(P["camera_matrix"]):
            if len(P["camera_matrix"]) != 9:
                raise StartupError("camera_matrix needs 9 values (row-major K)")
            self.K_param = np.asarray(P["camera_matrix"], dtype=np.float64).reshape(3, 3)

        # state shared between callbacks and the worker
        self._lock = threading.Condition()
        self._latest_image: Image | CompressedImage | None = None
        self._last_processed_stamp: float | None = None  # only newer frames are acted on
        self._last_clock: float | None = None  # a clock jumping back resets the history
        self._camera_info: CameraInfo | None = None
        self._eef = StampedBuffer(400)
        self._joints = StampedBuffer(400)
        self.inputs = self._input_monitors(P, image_topic, transport)
        self._action_rate = RateMeter()
        # decode: image conversion (JPEG/PNG decode for compressed input) and rectification
        self.latency = {k: LatencyStats() for k in ("inference", "decode", "total", "image_age")}
        self.skips = SkipCounter()  # frames (images) not turned into a command, by reason
        self.processed = 0
        self.commands = 0
        self._last_command: PoseStamped | None = None
        self._last_command_time: float | None = None  # node clock
        self._holding = ""
        self._running = True
        self._subscribe(P, image_topic, transport)
        self._advertise(P)

        spec = self.policy.spec
        warm_ms = self.policy.warmup(int(P["warmup_runs"])) if P["warmup_runs"] > 0 else 0.0
        self.get_logger().info(
            f"model {self.policy.model_id} ({P['model_path']}): T={spec.window.steps} "
            f"dt={spec.window.dt:.3f}s image {spec.image.height}x{spec.image.width}; "
            f"providers in use {self.policy.providers} (requested {P['providers']}); "
            f"warm-up {warm_ms:.1f} ms; executor {self.executor_settings.describe()}"
        )
        self.get_logger().info(f"speed limit: {self.executor_settings.speed_limit_text()}")
        self.get_logger().info(f"camera pose: {self.camera_source_text}")
        self.get_logger().info(f"EEF pose: {self.inputs['eef_pose'].what}")
        if self.policy.fallback:  # a GPU provider was requested but the session runs on CPU
            # a GPU provider offered but not taken is a fault; a CPU-only build is a choice
            log = self.get_logger()
            say = log.warning if "fell back" in self.policy.fallback else log.info
            say(f"ONNX Runtime: {self.policy.fallback}")
        # on the steady clock: under use_sim_time a paused or rewound /clock must not silence
        # the diagnostics or the watchdog (which still compares input times on the node clock)
        steady = RosClock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(float(P["diagnostics_period"]), self._publish_diagnostics, clock=steady)
        self.create_timer(min(0.1, float(P["watchdog_timeout"]) / 2), self._watch, clock=steady)
        self._worker = threading.Thread(target=self._work, name="para_policy_infer", daemon=True)
        self._worker.start()

    # -- start-up ------------------------------------------------------------------------
    def _load_model(self, P) -> None:
        if not P["model_path"]:
            raise StartupError("parameter model_path is empty: pass the ONNX model to run")
        try:
            self.policy = OnnxPolicy(P["model_path"], P["providers"], int(P["threads"]))
        except (ModelLoadError, SpecError) as exc:
            raise StartupError(str(exc)) from exc
        spec = self.policy.spec
        if spec.camera.world_frame != P["world_frame"]:
            raise StartupError(
                f"the model's world frame is {spec.camera.world_frame!r} but parameter "
                f"world_frame is {P['world_frame']!r}: the contract disagrees with the "
                "parameters"
            )
        if P["expected_model_id"] and P["expected_model_id"] != self.policy.model_id:
            raise StartupError(
                f"model id is {self.policy.model_id!r}, expected {P['expected_model_id']!r}"
            )

    def _resolve_executor(self, P) -> None:
        try:
            self.executor_settings = resolve_executor(
                self.policy.spec,
                {
                    "execute_step": int(P["execute_step"]),
                    "max_step_m": float(P["max_step"]),
                    "stall_patience": int(P["stall_patience"]),
                    "controller": str(P["controller"]),
                    "max_speed_mps": float(P["max_speed"]),
                    "max_angular_speed_rps": float(P["max_angular_speed"]),
                },
            )
            self.safety = safety_config(
                self.executor_settings.spec,
                nominal_period_s=float(self.policy.spec.window.dt),
                workspace_min=tuple(P["workspace_min"]),
                workspace_max=tuple(P["workspace_max"]),
                min_confidence=float(P["min_confidence"]),
            )
            self.chunk_executor = Executor(self.safety)
            self.watchdog = Watchdog(float(P["watchdog_timeout"]))
        except (ValueError, SpecError) as exc:
            raise StartupError(str(exc)) from exc

    def _resolve_camera(self, P) -> None:
        """The camera pose's source (tf, topic, parameter, training_camera), said at start."""
        try:
            source, why = camera_pose_source(
                P["camera_pose_source"], P["camera_pose"], P["camera_pose_topic"]
            )
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        self.camera_source = source
        self.camera_frame_used = ""  # the TF frame of the last camera lookup
        self.T_world_cam: np.ndarray | None = None
        self._camera_pose_bad = None  # the newest camera pose message was implausible
        world = P["world_frame"]
        if source == "parameter":
            self.T_world_cam = self._camera_pose(P["camera_pose"])
            self._check_camera_pose_at_startup()
            text = f"parameter camera_pose ({world} <- camera)"
        elif source == "training_camera":
            T = self.policy.spec.camera.T_world_cam
            if not T:
                raise StartupError(
                    "camera_pose_source is training_camera but the model records no training "
                    "camera: use tf, topic or parameter"
                )
            self.T_world_cam = np.asarray(T, dtype=np.float64)
            text = (
                "the model's training camera (PolicySpec camera.T_world_cam): right only where "
                "that camera is, e.g. the simulation the model was trained in"
            )
        elif source == "topic":
            text = f"topic {P['camera_pose_topic']} (geometry_msgs/PoseStamped, {world} <- camera)"
        else:
            frame = P["camera_frame"] or "the CameraInfo's header.frame_id"
            text = f"tf: {world} <- {frame} from /tf + /tf_static at the image stamp"
        self.camera_source_text = f"{text} [{source}: {why}]"

    def _input_monitors(self, P, image_topic: str, transport: str) -> dict[str, InputMonitor]:
        world = P["world_frame"]
        img_type = (
            "sensor_msgs/CompressedImage" if transport == "compressed" else ("sensor_msgs/Image")
        )
        eef = (
            f"/tf + /tf_static (tf2_msgs/TFMessage): {world} <- {P['eef_frame']}"
            if P["eef_frame"]
            else f"{P['eef_pose_topic']} (geometry_msgs/PoseStamped in frame {world!r})"
        )
        inputs = {
            "image": f"{image_topic} ({img_type})",
            "camera_info": f"{P['camera_info_topic']} (sensor_msgs/CameraInfo)",
            "eef_pose": eef,
            "joint_states": f"{P['joint_states_topic']} (sensor_msgs/JointState)",
        }
        if self.camera_source == "topic":
            inputs["camera_pose"] = (
                f"{P['camera_pose_topic']} (geometry_msgs/PoseStamped in frame {world!r})"
            )
        return {name: InputMonitor(name, what) for name, what in inputs.items()}

    def _subscribe(self, P, image_topic: str, transport: str) -> None:
        # Robot state as best effort (matches reliable publishers too): a state sample lost
        # next to large images is recovered by a reliable reader only at the next heartbeat,
        # seconds later (measured: EEF poses 0.2-2.4 s late with 448 px images); a stale
        # state is useless for control, the next sample arrives within milliseconds.
        state_qos = QoSProfile(
            depth=50, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST
        )
        overridable = QoSOverridingOptions.with_default_policies()  # qos_overrides.<topic>...
        self.create_subscription(
            CompressedImage if transport == "compressed" else Image,
            image_topic,
            self._on_image,
            qos_profile_sensor_data,
            qos_overriding_options=overridable,
        )
        self._matched = [
            MatchingSubscription(self, CameraInfo, P["camera_info_topic"], self._on_camera_info)
        ]
        self.create_subscription(
            JointState,
            P["joint_states_topic"],
            self._on_joints,
            state_qos,
            qos_overriding_options=overridable,
        )
        self.tf = None
        if P["eef_frame"] or self.camera_source == "tf":
            try:
                self.tf = TfInput(
                    self, self._now, self.inputs["eef_pose"] if P["eef_frame"] else None
                )
            except ImportError as exc:
                raise StartupError(str(exc)) from exc
        if not P["eef_frame"]:
            self.create_subscription(
                PoseStamped,
                P["eef_pose_topic"],
                self._on_eef,
                state_qos,
                qos_overriding_options=overridable,
            )
        if self.camera_source == "topic":
            self._matched.append(
                MatchingSubscription(
                    self, PoseStamped, P["camera_pose_topic"], self._on_camera_pose
                )
            )

    def _advertise(self, P) -> None:
        qos = QoSProfile(depth=10)
        self.pub_action = self.create_publisher(PolicyAction, "~/action", qos)
        self.pub_target = self.create_publisher(PoseStamped, "~/eef_target", qos)
        self.pub_grip = self.create_publisher(Float64, "~/gripper_command", qos)
        self.pub_rot = self.create_publisher(Vector3Stamped, "~/rotation", qos)
        self.pub_path = self.create_publisher(Path, "~/trajectory", qos)
        self.pub_heat = (
            self.create_publisher(Image, "~/heatmap", qos) if P["publish_heatmap"] else None
        )
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", qos)

    def _check_camera_pose_at_startup(self) -> None:
        """The camera pose must see where the training camera looked: the point where the
        training camera's optical axis meets the middle of the height range (the model's
        workspace), in front of the camera and inside the image at the model's K."""
        spec = self.policy.spec
        if not (spec.camera.K and spec.camera.T_world_cam):
            return
        K, T_train = np.asarray(spec.camera.K), np.asarray(spec.camera.T_world_cam)
        h = 0.5 * (spec.height.min + spec.height.max)
        centre = [spec.image.width / 2, spec.image.height / 2]
        point = lift_point(centre, h, K, T_train)
        bad = check_camera_sees(
            point,
            K,
            self.T_world_cam,
            spec.image.width,
            spec.image.height,
            "the model's workspace centre",
        )
        if bad is not None:
            raise StartupError(f"camera_pose parameter: {bad.reason}")

    def _camera_pose(self, values) -> np.ndarray:
        values = list(values)
        if len(values) != 7:
            raise StartupError("camera_pose needs 7 values: x y z qx qy qz qw")
        q = np.asarray(values[3:], dtype=np.float64)
        if not np.isfinite(values).all() or abs(np.linalg.norm(q) - 1.0) > 1e-3:
            raise StartupError(f"camera_pose quaternion {q.tolist()} is not a unit quaternion")
        return pose_matrix(values[:3], q)

    # -- callbacks: store only -----------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, msg: Image) -> None:
        now = self._now()
        self.inputs["image"].receive(now)
        self.inputs["image"].accept()
        self.watchdog.feed("image", now)
        with self._lock:
            if self._latest_image is not None:
                self.skips.add("superseded", "a newer image arrived before inference")
            self._latest_image = msg
            self._lock.notify()

    def _on_camera_pose(self, msg: PoseStamped) -> None:
        self.inputs["camera_pose"].receive(self._now())
        pos, quat = cv.pose_to_arrays(msg.pose)
        bad = check_pose(pos, quat, msg.header.frame_id, self.P["world_frame"], "camera pose")
        if bad is not None:
            # the calibration source says something wrong: stop using the last good pose
            self._camera_pose_bad = bad
            return self.inputs["camera_pose"].drop(*bad)
        self.inputs["camera_pose"].accept()
        self.T_world_cam = pose_matrix(pos, quat)
        self._camera_pose_bad = None

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.inputs["camera_info"].receive(self._now())
        self.inputs["camera_info"].accept()
        self._camera_info = msg

    def _on_eef(self, msg: PoseStamped) -> None:
        now = self._now()
        self.inputs["eef_pose"].receive(now)
        pos, quat = cv.pose_to_arrays(msg.pose)
        bad = check_pose(pos, quat, msg.header.frame_id, self.P["world_frame"], "EEF pose")
        if bad is not None:
            return self.inputs["eef_pose"].drop(*bad)
        self.inputs["eef_pose"].accept()
        self.watchdog.feed("eef_pose", now)
        self._eef.add(cv.stamp_to_sec(msg.header.stamp), (pos, quat))

    def _on_joints(self, msg: JointState) -> None:
        now = self._now()
        self.inputs["joint_states"].receive(now)
        pos = np.asarray(msg.position, dtype=np.float64)
        if not np.isfinite(pos).all():
            self.inputs["joint_states"].drop("joints_nonfinite", "joint state has NaN/inf")
            self._joints.add(cv.stamp_to_sec(msg.header.stamp), None)  # a bad state, on record
            return
        self.inputs["joint_states"].accept()
        self.watchdog.feed("joint_states", now)
        self._joints.add(cv.stamp_to_sec(msg.header.stamp), pos)

    # -- the worker: newest image only ----------------------------------------------------
    def _work(self) -> None:
        while self._running and rclpy.ok():
            with self._lock:
                if self._latest_image is None:
                    self._lock.wait(timeout=0.1)
                msg, self._latest_image = self._latest_image, None
            if msg is None:
                continue
            try:
                self._process(msg)
            except Exception as exc:  # never let one bad frame kill the node
                self.skips.add("internal_error", f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"frame skipped: {type(exc).__name__}: {exc}")

    def _skip(self, category: str, detail: str) -> None:
        self.skips.add(category, detail)
        self.get_logger().warning(
            f"frame skipped ({category}): {detail}", throttle_duration_sec=2.0
        )

    def _reset_history(self, reason: str) -> None:
        """Forget every time-indexed input and the executor's state (a clock that jumped
        back, e.g. a looped bag, would otherwise make every new frame 'older')."""
        self._eef.clear()
        self._joints.clear()
        if self.tf is not None:
            self.tf.reset()
        self._last_processed_stamp = None
        self.chunk_executor = Executor(self.safety)
        self.skips.add("history_reset", reason)
        self.get_logger().warning(f"history reset: {reason}")

    def _check_time(self, stamp: float) -> tuple[str, str] | None:
        now = self._now()
        if self._last_clock is not None and now < self._last_clock - float(
            self.P["clock_jump_threshold"]
        ):
            self._reset_history(
                f"the clock jumped back {self._last_clock - now:.3f} s (a looped bag or a "
                "restarted simulation)"
            )
        self._last_clock = now
        last = self._last_processed_stamp
        if last is not None and stamp < last - float(self.P["clock_jump_threshold"]):
            # the camera's stamps, not the node's clock, went back: a restarted driver
            self._reset_history(
                f"image stamps jumped back {last - stamp:.3f} s (a restarted camera driver or "
                "robot clock)"
            )
        if self.get_parameter("use_sim_time").value and stamp > now:
            # /clock and the image travel on different topics: give the clock a moment
            end = time.monotonic() + float(self.P["state_tolerance"])
            while self._now() < stamp and time.monotonic() < end:
                time.sleep(0.002)
            now = self._now()
        return check_stamp(
            stamp, now, self._last_processed_stamp, float(self.P["future_tolerance"])
        )

    def _intrinsics(self, msg) -> tuple[np.ndarray | None, Rectifier | None, tuple | None]:
        """(K at the image's resolution, rectifier or None) or (None, None, (category,
        reason)) when the camera model cannot be trusted."""
        P = self.P
        if self.K_param is not None:
            return self.K_param, None, None
        info = self._camera_info
        if info is None:
            return (
                None,
                None,
                (
                    "no_camera_info",
                    f"no CameraInfo on {P['camera_info_topic']} and camera_matrix is unset",
                ),
            )
        K = cv.camera_info_to_K(info)
        bad = check_intrinsics(K, int(info.width), int(info.height))
        if bad is not None:
            return None, None, (bad.category, f"camera_info: {bad.reason}")
        if not needs_rectification(info.distortion_model, info.d):
            return K, None, None
        if P["distortion"] == "refuse":
            return (
                None,
                None,
                (
                    "distortion_refused",
                    f"camera_info has {info.distortion_model} distortion d={list(info.d)} and "
                    "parameter distortion is 'refuse': publish rectified images (d all zero) or "
                    "set distortion:=rectify",
                ),
            )
        bad = check_distortion(info.distortion_model, info.d)
        if bad is not None:
            return None, None, (bad.category, f"camera_info: {bad.reason}")
        rect = Rectifier.for_info(cv.calibration(info))
        return rect.K, rect, None

    def _camera_at(self, stamp: float) -> tuple[np.ndarray | None, tuple[str, str] | None]:
        """(T_world_cam at the image stamp, None) or (None, (category, reason))."""
        P = self.P
        if self.camera_source == "tf":
            frame = P["camera_frame"] or self._camera_info.header.frame_id
            self.camera_frame_used = frame
            if not frame:
                return None, (
                    "no_camera_tf",
                    "camera_pose_source tf: camera_frame is '' and the CameraInfo's "
                    "header.frame_id is empty: set camera_frame",
                )
            T, bad = self.tf.lookup(P["world_frame"], frame, stamp, P["state_tolerance"])
            if bad is not None:
                return None, (bad[0], f"camera pose ({P['world_frame']} <- {frame}): {bad[1]}")
            return T, None
        if self._camera_pose_bad is not None:
            return None, tuple(self._camera_pose_bad)
        if self.T_world_cam is None:
            seen = self.inputs["camera_pose"].status(self._publisher_count("camera_pose"))
            return None, ("no_camera_pose", f"no camera pose yet: {seen}")
        return self.T_world_cam, None

    def _eef_at(self, stamp: float) -> tuple[tuple | None, tuple[str, str] | None]:
        """((position (3,), quaternion x y z w) of the EEF in world at the image stamp, None)
        or (None, (category, reason))."""
        P = self.P
        tol = float(P["state_tolerance"])
        if P["eef_frame"]:
            T, bad = self.tf.lookup(P["world_frame"], P["eef_frame"], stamp, tol)
            if bad is not None:
                return None, (
                    bad[0],
                    f"EEF pose ({P['world_frame']} <- {P['eef_frame']}): {bad[1]}",
                )
            return (T[:3, 3].copy(), Rotation.from_matrix(T[:3, :3]).as_quat()), None
        eef = self._eef.wait_nearest(stamp, tol, timeout=tol)
        if eef is None:
            latest = self._eef.latest_stamp()
            seen = self.inputs["eef_pose"].status(self._publisher_count("eef_pose"))
            if latest is not None:
                seen = f"the newest accepted is {latest - stamp:+.3f} s from it; {seen}"
            return None, ("no_eef_pose", f"no EEF pose within {tol} s of the image stamp ({seen})")
        return eef[0], None

    def _decode(self, msg, rectifier) -> tuple[np.ndarray | None, tuple[str, str] | None]:
        """(upright RGB at the camera's resolution, rectified if needed) or a skip reason."""
        t_decode = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                rgb = cv.compressed_to_rgb(msg)
            else:
                rgb = cv.image_to_rgb(msg)
        except ImageFormatError as exc:
            return None, ("image_format", str(exc))
        info = self._camera_info
        if self.K_param is None and (info.width, info.height) != (rgb.shape[1], rgb.shape[0]):
            return None, (
                "image_size",
                f"image is {rgb.shape[1]}x{rgb.shape[0]} but "
                f"camera_info is {info.width}x{info.height}",
            )
        if rectifier is not None:
            rgb = rectifier.rectify(rgb)
        self.latency["decode"].add((time.perf_counter() - t_decode) * 1e3)
        return rgb, None

    def _process(self, msg) -> None:
        P = self.P
        t0 = time.perf_counter()
        stamp = cv.stamp_to_sec(msg.header.stamp)
        bad = self._check_time(stamp)
        if bad is not None:
            return self._skip(*bad)
        age = self._now() - stamp
        if age > P["max_image_age"]:
            return self._skip(
                "stale_image", f"image is {age:.3f} s old (max_image_age {P['max_image_age']} s)"
            )
        K, rectifier, bad = self._intrinsics(msg)
        if bad is not None:
            return self._skip(*bad)
        T_world_cam, bad = self._camera_at(stamp)
        if bad is not None:
            return self._skip(*bad)
        rgb, bad = self._decode(msg, rectifier)
        if bad is not None:
            return self._skip(*bad)
        eef, bad = self._eef_at(stamp)
        if bad is not None:
            return self._skip(*bad)
        if P["require_joint_states"]:
            tol = P["state_tolerance"]
            js = self._joints.wait_nearest(stamp, tol, timeout=tol)
            if js is None:
                return self._skip(
                    "no_joint_states",
                    f"no joint state within {tol} s of the image stamp "
                    f"({self.inputs['joint_states'].status(self._publisher_count('joint_states'))})",
                )
            if js[0] is None:
                return self._skip("joints_nonfinite", "joint state at the image stamp has NaN/inf")
        pos, quat = eef
        spec = self.policy.spec
        bad = check_eef_height(pos[2], spec.height.min, spec.height.max, P["world_frame"])
        if bad is None:
            bad = check_start_keypoint(pos, K, T_world_cam, rgb.shape[1], rgb.shape[0])
        if bad is not None:
            return self._skip(*bad)
        try:
            res = self.policy.infer(
                Observation(rgb, K, T_world_cam, pos, self.chunk_executor.gripper_state),
                with_heatmap=self.pub_heat is not None,
            )
        except ObservationError as exc:
            return self._skip("observation", str(exc))
        self.processed += 1
        self._last_processed_stamp = stamp
        # the rotation bound applies to a rotation that is executed (not under zero_rotation)
        rotates = not self.executor_settings.spec.zero_rotation
        cmd, reason = self.chunk_executor.decide(
            res.chunk, pos, stamp_s=stamp, eef_quat_xyzw=quat if rotates else None
        )
        total_ms = (time.perf_counter() - t0) * 1e3
        self.latency["inference"].add(res.inference_ms)
        self.latency["total"].add(total_ms)
        self.latency["image_age"].add(age * 1e3)
        self._publish(msg, res, cmd, reason, age)
        if cmd is None:
            self.skips.add("unsafe_output", reason)

    # -- publishing -----------------------------------------------------------------------
    def _publish(self, img, res, cmd, reason, age: float) -> None:
        ch = res.chunk
        frame = self.P["world_frame"]
        a = PolicyAction()
        a.header.stamp = img.header.stamp
        a.header.frame_id = frame
        a.model_id = self.policy.model_id
        a.dt = float(self.policy.spec.window.dt)
        a.execute_step = int(self.safety.execute_step)
        a.command_published = cmd is not None
        if cmd is not None:
            a.status = PolicyAction.STATUS_OK_CLAMPED if cmd.clamped else PolicyAction.STATUS_OK
            a.status_detail = cmd.limits_text
        else:
            a.status, a.status_detail = reason.code, str(reason)
        cv.fill_chunk(a, ch)
        if cmd is not None:
            a.command = cv.make_pose(cmd.position, cmd.quat_xyzw)
            a.command_gripper = float(cmd.gripper)
        a.inference_time_ms = float(res.inference_ms)
        a.image_age_ms = float(age * 1e3)
        self.pub_action.publish(a)
        self._action_rate.tick(self._now())
        path = Path()
        path.header = a.header
        path.poses = [
            cv.make_pose_stamped(p, q, img.header.stamp, frame)
            for p, q, ok in zip(ch.positions, ch.quat_xyzw, ch.valid, strict=True)
            if ok
        ]
        self.pub_path.publish(path)
        if self.pub_heat is not None and res.heatmap is not None:
            self.pub_heat.publish(self._heatmap_image(res, img))
        if cmd is None:
            return
        target = cv.make_pose_stamped(cmd.position, cmd.quat_xyzw, img.header.stamp, frame)
        self.pub_target.publish(target)
        self.pub_grip.publish(Float64(data=cmd.gripper))
        rot = Vector3Stamped(vector=cv.make_vector3(cmd.euler))
        rot.header = a.header
        self.pub_rot.publish(rot)
        self._last_command = target
        self._last_command_time = self._now()
        self.commands += 1

    def _heatmap_image(self, res, img: Image) -> Image:
        """Max over steps of the voxel heatmap, upsampled and blended over the model input."""
        spec = self.policy.spec
        heat = res.heatmap.max(axis=0)  # (Hg, Wg)
        heat = heat / max(float(heat.max()), 1e-9)
        ry, rx = spec.image.height // spec.grid.height, spec.image.width // spec.grid.width
        up = np.kron(heat, np.ones((max(ry, 1), max(rx, 1))))
        canvas = np.zeros((spec.image.height, spec.image.width, 3), np.uint8)
        h, w = min(up.shape[0], canvas.shape[0]), min(up.shape[1], canvas.shape[1])
        canvas[:h, :w, 0] = (255 * up[:h, :w]).astype(np.uint8)
        return cv.rgb_to_image(canvas, img.header.stamp, img.header.frame_id)

    # -- watchdog and diagnostics -----------------------------------------------------------
    def _watched(self) -> tuple[str, ...]:
        """Inputs whose silence makes the node hold (the EEF from TF: any /tf message)."""
        return ("image", "eef_pose") + (
            ("joint_states",) if self.P["require_joint_states"] else ()
        )

    def _watch(self) -> None:
        if self.P["eef_frame"] and self.tf is not None and self.tf.last_message is not None:
            self.watchdog.feed("eef_pose", self.tf.last_message)
        # ~/eef_target carries new commands only: while inputs are stale nothing new is
        # published (the controller keeps the last target) and /diagnostics says "holding"
        self._holding = ", ".join(self.watchdog.stale(self._now(), self._watched()))

    def _recent_frames_refused(self, now: float) -> bool:
        """Images arrive but none of the last diagnostics period became a command."""
        period = float(self.P["diagnostics_period"])
        return bool(self.skips.last_reason) and (
            self.commands == 0
            or (
                self._last_command_time is not None
                and now - self._last_command_time > 2 * period
                and self.inputs["image"].rate.rate(now) > 0
            )
        )

    def _publisher_count(self, name: str) -> int | None:
        """Publishers on the topic of input `name` (None for TF-derived inputs)."""
        topic = {
            "image": None,
            "camera_info": self.P["camera_info_topic"],
            "eef_pose": None if self.P["eef_frame"] else self.P["eef_pose_topic"],
            "joint_states": self.P["joint_states_topic"],
            "camera_pose": self.P["camera_pose_topic"],
        }.get(name)
        return self.count_publishers(topic) if topic else None

    def _input_values(self, now: float) -> dict[str, str]:
        kv = {}
        for name, mon in self.inputs.items():
            kv[f"rate_hz.{name}"] = f"{mon.rate.rate(now):.2f}"
            kv[f"input.{name}"] = mon.status(self._publisher_count(name))
            for reason, n in sorted(mon.dropped.snapshot().items()):
                kv[f"dropped.{name}.{reason}"] = str(n)
        if self.tf is not None:
            kv["rate_hz.tf"] = f"{self.tf.rate.rate(now):.2f}"
            kv["tf.transforms_received"] = str(self.tf.received)
            kv["tf.frames"] = ",".join(self.tf.buffer.frames)
            for reason, n in sorted(self.tf.dropped.snapshot().items()):
                kv[f"dropped.tf.{reason}"] = str(n)
        kv["rate_hz.action"] = f"{self._action_rate.rate(now):.2f}"
        return kv

    def _publish_diagnostics(self) -> None:
        now = self._now()
        st = DiagnosticStatus(name="para_policy: inference", hardware_id=self.policy.model_id)
        kv = {
            "model": self.P["model_path"],
            "providers": ",".join(self.policy.providers),
            "provider_fallback": self.policy.fallback or "no",
            "frames_processed": str(self.processed),
            "commands_published": str(self.commands),
            "frames_skipped": str(self.skips.total()),
            "last_skip_reason": self.skips.last_reason,
            "holding_last_target": "yes: stale " + self._holding if self._holding else "no",
            "executor": self.executor_settings.describe(),
            "speed_limit": self.executor_settings.speed_limit_text(),
            "camera_pose_source": self.camera_source_text,
            "unknown_parameters": "; ".join(self.unknown_parameters) or "none",
        }
        if self.camera_source == "tf":
            kv["camera_frame"] = self.camera_frame_used or "none looked up yet"
        if self.tf is not None and self.tf.dropped.total():
            kv["tf.last_refused"] = self.tf.dropped.last_reason
        for reason, n in sorted(self.skips.snapshot().items()):
            kv[f"skipped.{reason}"] = str(n)
        kv.update(self._input_values(now))
        expected = float(self.P["expected_image_rate"])
        image_rate = self.inputs["image"].rate.rate(now)
        low_rate = ""
        if expected > 0:
            kv["rate_hz.image.expected"] = f"{expected:.2f}"
            if image_rate < 0.5 * expected:
                low_rate = (
                    f"image rate {image_rate:.1f} Hz, expected {expected:.1f} Hz (frames lost in "
                    "transport? large images need FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA)"
                )
        for name, lat in self.latency.items():
            for q, v in lat.percentiles().items():
                kv[f"{name}_ms.{q}" if q != "n" else f"{name}_ms.count"] = f"{v:.3f}"
        eef_t = self._eef.latest_stamp()
        if not self.P["eef_frame"]:
            kv["eef_pose_age_s"] = f"{now - eef_t:.3f}" if eef_t is not None else "never"
        st.values = [KeyValue(key=k, value=v) for k, v in kv.items()]
        if self._holding:
            stale = [s.strip() for s in self._holding.split(",")]
            why = "; ".join(self.inputs[n].status(self._publisher_count(n)) for n in stale)
            st.level, st.message = DiagnosticStatus.WARN, f"holding: stale {why}"
        elif low_rate:
            st.level, st.message = DiagnosticStatus.WARN, low_rate
        elif self._recent_frames_refused(now):
            st.level, st.message = DiagnosticStatus.WARN, self.skips.last_reason
        elif self.unknown_parameters:
            st.level = DiagnosticStatus.WARN
            st.message = "running; " + "; ".join(self.unknown_parameters)
        else:
            st.level, st.message = DiagnosticStatus.OK, "running"
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def destroy_node(self) -> None:
        # also called by rclpy's context clean-up on a node whose __init__ raised
        # (StartupError): only stop what was started
        self._running = False
        worker = getattr(self, "_worker", None)
        if worker is not None:
            with self._lock:
                self._lock.notify_all()
            worker.join(timeout=2.0)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if print_help(
        argv, "para_policy", __doc__, [(p.name, p.default, p.description) for p in PARAMS]
    ):
        return 0
    enable_stack_dumps()
    try:
        rclpy.init(args=argv)
    except Exception as exc:  # rcl refuses malformed --ros-args (e.g. a bad -p override)
        print(f"para_policy: error: cannot initialise ROS: {exc}", file=sys.stderr, flush=True)
        return 2
    node = None
    try:
        node = PolicyNode()
        # spin_once with a timeout, not rclpy.spin: a SIGTERM that arrives while the node is
        # still starting shuts the context down before the executor's wait set exists, and an
        # unbounded wait would then never return (seen under load: the node outlived its
        # launcher); this loop notices within 0.5 s
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_shutdown(lambda: executor.spin_once(timeout_sec=0.5), rclpy.ok)
    except (StartupError, ParameterException) as exc:  # e.g. -p threads:=abc
        print(f"para_policy: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
