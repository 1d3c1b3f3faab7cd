"""The LIBERO bridge's `driver` mode: the simulated arm speaks only what real drivers publish.

A Franka through franka_ros2 and a RealSense through realsense2_camera (names are parameters,
defaults theirs):
    /joint_states                            sensor_msgs/JointState, every control step
    /tf                                      tf2_msgs/TFMessage panda_link0 -> .. -> panda_hand,
                                             every control step (robot_state_publisher's QoS)
    /tf_static                               one TFMessage: world -> panda_link0, panda_hand ->
                                             panda_hand_tcp, world -> camera_link (hand-eye
                                             calibration), camera_link -> optical frame
    /camera/camera/color/image_raw/compressed  sensor_msgs/CompressedImage JPEG, camera_rate Hz,
                                             the render with the CameraInfo's distortion applied
    /camera/camera/color/camera_info         plumb_bob, K and P as realsense2_camera fills them
    /clock                                   the simulation clock
and the bridge's own EpisodeStatus (its step and max_steps count control steps). It executes
the newest geometry_msgs/PoseStamped on target_topic (the TCP in world_frame) and
std_msgs/Float64 on gripper_topic (-1 open .. +1 closed) as a streaming Cartesian controller
(para_ros.sim.driver_arm): free-running, never waiting for a command; a target stamped more
than target_timeout before the simulation clock (or after it), before its episode, in another
frame, not finite or without a unit quaternion is ignored and counted.

Simulation time: rendering camera_rate frames per simulated second costs more than real time on
a CPU, so the arm runs on its own clock (/clock, as Gazebo-simulated robots do; commanders run
with use_sim_time:=true): as fast as the machine allows, at most max_real_time_factor times real
time, never slowed down by the policy. Each episode's results give its real-time factor.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, CompressedImage, JointState
from std_msgs.msg import Float64

from para_ros.core.contract import ExecutorSpec, WindowSpec
from para_ros.nodes import conversions as cv
from para_ros.sim.distorted_camera import REALSENSE_PLUMB_BOB, DistortedCamera
from para_ros.sim.driver_arm import DriverArm, FrameNames, Transform
from para_ros.sim.evaluate import latency_summary
from para_ros.sim.libero_sim import SimError

_NAMES = FrameNames()
DRIVER_PARAMS = {
    "control_freq": (
        100,
        "driver: control steps per simulated second (OSC goal updates; /joint_states and /tf "
        "are published at every step)",
    ),
    "camera_rate": (30.0, "driver: camera frames per simulated second"),
    "jpeg_quality": (95, "driver: JPEG quality of the compressed image (image_transport's)"),
    "distortion": (
        list(REALSENSE_PLUMB_BOB),
        "driver: plumb_bob k1 k2 p1 p2 k3 of camera_info, applied to the pinhole render",
    ),
    "target_topic": (
        "/para_policy/eef_target",
        "driver: geometry_msgs/PoseStamped TCP target in world_frame (the newest is executed)",
    ),
    "gripper_topic": (
        "/para_policy/gripper_command",
        "driver: std_msgs/Float64 gripper command, -1 open .. +1 closed",
    ),
    "target_timeout": (
        0.5,
        "driver: seconds of simulation clock; a target stamped longer ago (or this far ahead) "
        "is ignored and counted",
    ),
    "max_speed": (
        0.0,
        "driver: m/s, fastest setpoint translation (0 = the model's executor.max_speed_mps)",
    ),
    "max_angular_speed": (
        0.0,
        "driver: rad/s, fastest setpoint rotation (0 = the model's "
        "executor.max_angular_speed_rps)",
    ),
    "max_real_time_factor": (
        1.0,
        "driver: simulated seconds per wall-clock second at most (0 = as fast as possible)",
    ),
    "joint_states_topic": ("/joint_states", "driver: sensor_msgs/JointState topic"),
    "image_topic": (
        "/camera/camera/color/image_raw",
        "driver: image_transport base topic; the JPEG goes to <image_topic>/compressed",
    ),
    "camera_info_topic": ("/camera/camera/color/camera_info", "driver: CameraInfo topic"),
    "link_frames": (
        list(_NAMES.links),
        "driver: TF frames of the robot base, links 1-7 and the hand (9 names)",
    ),
    "joint_names": (list(_NAMES.joints), "driver: 7 arm joint and 2 finger joint names"),
    "tcp_frame": (_NAMES.tcp, "driver: TF frame of the tool centre point (the grip site)"),
    "camera_link_frame": (_NAMES.camera_link, "driver: the camera's body frame (REP-103)"),
    "optical_frame": (
        _NAMES.optical,
        "driver: the camera's optical frame (z forward, x right, y down), the image frame_id",
    ),
}
JPEG_FORMAT = "rgb8; jpeg compressed bgr8"  # compressed_image_transport's for an rgb8 image
IGNORED = ("stale", "future", "before_episode", "frame", "invalid")
TF_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)
TF_STATIC_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
_FRAME_WALL_KEPT = 256  # frame stamps remembered to time a target's round trip


def _tf_message_type():
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        raise SimError(
            "driver mode publishes /tf but tf2_msgs is not importable: on a ROS install source "
            f"its setup file; a pip install of para_ros builds it ({exc})"
        ) from exc
    return TFMessage


def speed_limits(P: dict, spec, dt: float) -> tuple[float, float, str]:
    """(m/s, rad/s, where from) of the setpoint: the parameters where > 0, else the model's
    executor (PolicySpec executor.max_speed_mps / max_angular_speed_rps), else, without a
    model, the default executor's at policy period `dt` seconds."""
    v, w = float(P["max_speed"]), float(P["max_angular_speed"])
    if v < 0 or w < 0:
        raise ValueError(f"max_speed and max_angular_speed must be >= 0, got {v}, {w}")
    ex = spec.executor if spec is not None else ExecutorSpec().with_window(WindowSpec(dt=dt))
    source = "the model's executor" if spec is not None else "the default executor"
    if v and w:
        source = "parameters"
    elif v or w:
        source = f"parameters and {source}"
    return v or float(ex.max_speed_mps), w or float(ex.max_angular_speed_rps), source


def frame_names(P: dict) -> FrameNames:
    return FrameNames(
        world=P["world_frame"],
        links=tuple(P["link_frames"]),
        tcp=P["tcp_frame"],
        camera_link=P["camera_link_frame"],
        optical=P["optical_frame"],
        joints=tuple(P["joint_names"]),
    )


def check_params(P: dict) -> None:
    """ValueError naming the first driver parameter with a bad value."""
    from robosuite.macros import SIMULATION_TIMESTEP

    physics_hz = round(1.0 / SIMULATION_TIMESTEP)
    if int(P["control_freq"]) <= 0 or physics_hz % int(P["control_freq"]):
        raise ValueError(
            f"control_freq must divide the {physics_hz} Hz physics rate (e.g. 20, 50, 100), "
            f"got {P['control_freq']}"
        )
    if not 0 < float(P["camera_rate"]) <= int(P["control_freq"]):
        raise ValueError(
            f"camera_rate must be > 0 and at most control_freq, got {P['camera_rate']}"
        )
    if not 1 <= int(P["jpeg_quality"]) <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {P['jpeg_quality']}")
    if float(P["target_timeout"]) <= 0:
        raise ValueError(f"target_timeout must be > 0 s, got {P['target_timeout']}")
    if float(P["max_real_time_factor"]) < 0:
        raise ValueError(f"max_real_time_factor must be >= 0, got {P['max_real_time_factor']}")


def _transform_msg(t: Transform, stamp) -> TransformStamped:
    m = TransformStamped()
    m.header.stamp, m.header.frame_id, m.child_frame_id = stamp, t.parent, t.child
    m.transform.translation = cv.make_vector3(t.T[:3, 3])
    q = Rotation.from_matrix(t.T[:3, :3]).as_quat()
    m.transform.rotation.x, m.transform.rotation.y = float(q[0]), float(q[1])
    m.transform.rotation.z, m.transform.rotation.w = float(q[2]), float(q[3])
    return m


class DriverIO:
    """The driver-mode topics of `node`: publishers, and the commands received (thread-safe:
    callbacks in the executor's thread, the simulation in the bridge's worker)."""

    def __init__(self, node: Node, P: dict):
        TFMessage = _tf_message_type()
        self.TFMessage = TFMessage
        self.node, self.P = node, P
        sensor = QoSProfile(depth=10)  # reliable + volatile, as both drivers publish
        self.pub_js = node.create_publisher(JointState, P["joint_states_topic"], sensor)
        self.pub_tf = node.create_publisher(TFMessage, "/tf", TF_QOS)
        self.pub_tf_static = node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        image = P["image_topic"].rstrip("/") + "/compressed"
        self.pub_img = node.create_publisher(CompressedImage, image, sensor)
        self.pub_info = node.create_publisher(CameraInfo, P["camera_info_topic"], sensor)
        self._lock = threading.Lock()
        self._targets: list[PoseStamped] = []
        self._gripper: tuple[float, float] | None = None  # (value, wall time received)
        node.create_subscription(PoseStamped, P["target_topic"], self._on_target, 10)
        node.create_subscription(Float64, P["gripper_topic"], self._on_gripper, 10)
        self.static_sent: list[tuple[str, str, bytes]] | None = None

    def _on_target(self, msg: PoseStamped) -> None:
        with self._lock:
            self._targets.append(msg)

    def _on_gripper(self, msg: Float64) -> None:
        with self._lock:
            self._gripper = (float(msg.data), time.monotonic())

    def take_commands(self) -> tuple[list[PoseStamped], tuple[float, float] | None]:
        """The targets received since the last call (oldest first) and the newest gripper
        command (value, wall time received)."""
        with self._lock:
            targets, self._targets = self._targets, []
            return targets, self._gripper

    def publish_state(self, stamp, arm: DriverArm) -> None:
        names, pos, vel, eff = arm.joint_state()
        js = JointState(name=names, position=pos.tolist(), velocity=vel.tolist())
        js.effort = eff.tolist()
        js.header.stamp = stamp
        self.pub_js.publish(js)
        tf = self.TFMessage(transforms=[_transform_msg(t, stamp) for t in arm.moving_transforms()])
        self.pub_tf.publish(tf)

    def publish_static(self, stamp, transforms: list[Transform]) -> bool:
        """One /tf_static message with all static transforms, when they differ from the last
        one sent (True when sent)."""
        key = [(t.parent, t.child, np.round(t.T, 12).tobytes()) for t in transforms]
        if key == self.static_sent:
            return False
        self.pub_tf_static.publish(
            self.TFMessage(transforms=[_transform_msg(t, stamp) for t in transforms])
        )
        self.static_sent = key
        return True

    def publish_frame(self, stamp, raw_rgb: np.ndarray, camera: DistortedCamera) -> None:
        ok, buf = cv2.imencode(
            ".jpg", raw_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(self.P["jpeg_quality"])]
        )
        if not ok:
            raise SimError("JPEG encoding of a camera frame failed")
        img = CompressedImage(format=JPEG_FORMAT, data=buf.tobytes())
        img.header.stamp, img.header.frame_id = stamp, self.P["optical_frame"]
        info = CameraInfo(**camera.camera_info())
        info.header.stamp, info.header.frame_id = stamp, self.P["optical_frame"]
        self.pub_img.publish(img)
        self.pub_info.publish(info)

    def commander_present(self) -> bool:
        """A publisher of target_topic exists (the policy node, or any commander)."""
        return self.node.count_publishers(self.P["target_topic"]) > 0


class CommandFilter:
    """Which received targets the controller executes, counted by reason (one episode)."""

    def __init__(self, world_frame: str, timeout: float, start: float, logger):
        self.world, self.timeout, self.start, self.log = world_frame, timeout, start, logger
        self.ignored: Counter = Counter()
        self.accepted = 0

    def accept(self, msg: PoseStamped, now: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(position (3,), quaternion x y z w) of a target to execute, or None (counted)."""
        stamp = cv.stamp_to_sec(msg.header.stamp)
        pos, quat = cv.pose_to_arrays(msg.pose)
        why, detail = None, ""
        if msg.header.frame_id != self.world:
            why, detail = "frame", f"in frame {msg.header.frame_id!r}, not {self.world!r}"
        elif not (np.isfinite(pos).all() and np.isfinite(quat).all()) or not math.isclose(
            float(np.linalg.norm(quat)), 1.0, abs_tol=1e-3
        ):
            why, detail = "invalid", f"not finite or not a unit quaternion: {pos}, {quat}"
        elif stamp < self.start:
            why, detail = "before_episode", f"stamped {stamp:.3f} s, before the episode"
        elif now - stamp > self.timeout:
            why = "stale"
            detail = f"stamped {now - stamp:.3f} s before the simulation clock"
        elif stamp - now > self.timeout:
            why = "future"
            detail = (
                f"stamped {stamp - now:.3f} s after the simulation clock: is its publisher "
                "on use_sim_time (/clock)?"
            )
        if why is None:
            self.accepted += 1
            return pos, quat
        if not self.ignored[why]:
            self.log.warning(f"ignoring a target {detail} (target_timeout {self.timeout} s)")
        self.ignored[why] += 1
        return None

    def counts(self) -> dict:
        return {k: int(self.ignored[k]) for k in IGNORED}


@dataclass
class _Record:
    """What one driver-mode episode measured."""

    filter: CommandFilter
    wall_start: float  # time.monotonic() at the reset: gripper commands before it are old
    # executed targets: [t (s since reset), x, y, z (world m), gripper command]
    targets: list = field(default_factory=list)
    ages_ms: list = field(default_factory=list)  # simulation clock - target stamp
    roundtrip_ms: list = field(default_factory=list)  # wall: frame published -> its target
    frame_wall: dict = field(default_factory=dict)  # frame stamp -> time.perf_counter()
    frames: int = 0
    held: int = 0  # control steps before the first executed target
    gripper_commands: int = 0
    last_gripper: float | None = None  # wall time of the newest gripper command used


class DriverEpisodes:
    """The bridge's episodes in driver mode (run in the bridge's worker thread, which owns
    MuJoCo). `bridge`: the LiberoBridge node (parameters, clock, EpisodeStatus, stop);
    `spec`: the model's PolicySpec or None. Raises ValueError for a bad parameter and
    SimError when tf2_msgs is missing."""

    def __init__(self, bridge, spec):
        P = bridge.P
        check_params(P)
        self.bridge, self.P = bridge, P
        self.names = frame_names(P)
        self.max_speed, self.max_angular_speed, source = speed_limits(P, spec, bridge.period)
        bridge.get_logger().info(
            f"driver mode: {int(P['control_freq'])} Hz control, {float(P['camera_rate'])} Hz "
            f"camera, setpoint at most {self.max_speed:.3f} m/s and "
            f"{self.max_angular_speed:.3f} rad/s ({source}), on simulation time (/clock)"
        )
        if P["gif_path"] or float(P["action_scale"]) != 1.0:
            bridge.get_logger().warning("driver mode ignores gif_path and action_scale")
        self.io = DriverIO(bridge, P)
        self.arm: DriverArm | None = None
        self.camera: DistortedCamera | None = None
        self._target: tuple[np.ndarray, np.ndarray] | None = None

    def attach(self, sim) -> None:
        """Use `sim` (created in the worker thread) from now on."""
        self.arm = DriverArm(
            sim, self.max_speed, self.max_angular_speed, self.bridge.zero_rotation, self.names
        )
        n = sim.cfg.image_size
        self.camera = DistortedCamera(sim.intrinsics(), (n, n), self.P["distortion"])

    def wait_for_commander(self, timeout: float) -> bool:
        """Wait up to `timeout` wall seconds for a publisher of target_topic (0: no wait)."""
        end = time.monotonic() + timeout
        while timeout > 0 and time.monotonic() < end and not self.bridge.stop.is_set():
            if self.io.commander_present():
                time.sleep(0.5)  # let the remaining endpoints match too
                return True
            time.sleep(0.1)
        return timeout == 0

    def episode(self, ep: int, init: int) -> dict:
        b, arm = self.bridge, self.arm
        try:
            arm.reset(init)
        except SimError as exc:
            b._status(ep, init, "ERROR", str(exc))
            return {"episode": ep, "init_state": init, "outcome": "REFUSED", "detail": str(exc)}
        stamp = b._sim_stamp(0.0)
        if self.io.publish_static(stamp, arm.static_transforms()):
            b.get_logger().info("published /tf_static")
        rec = _Record(
            CommandFilter(b.P["world_frame"], float(self.P["target_timeout"]), b._sim_now,
                          b.get_logger()),
            time.monotonic(),
        )  # fmt: skip
        self._target = None
        frame_period = 1.0 / float(self.P["camera_rate"])
        wall0 = time.perf_counter()
        while True:
            b.check_stop(ep)
            stamp = b._sim_stamp(arm.time)
            self.io.publish_state(stamp, arm)
            if arm.time >= rec.frames * frame_period - 1e-9:
                self._frame(stamp, rec)
                b._status(ep, init, "RUNNING")
            outcome = b.sim.outcome()
            if outcome != "RUNNING":
                break
            grip = self._commands(rec)
            target = self._target
            rec.held += target is None
            arm.step(*(target if target is not None else (None, None)), grip)
            self._pace(wall0, arm.time)
        b._status(ep, init, outcome)
        result = self._result(ep, init, outcome, rec, time.perf_counter() - wall0)
        b.get_logger().info(
            f"episode {ep} (init {init}): {outcome} in {b.sim.step_count} control steps "
            f"({arm.time:.2f} simulated s, real-time factor {result['real_time_factor']:.3f}; "
            f"{rec.filter.accepted} targets executed, {sum(rec.filter.counts().values())} "
            "ignored)"
        )
        return result

    def _frame(self, stamp, rec: _Record) -> None:
        raw = self.camera.distort(self.bridge.sim.render())
        self.io.publish_frame(stamp, raw, self.camera)
        rec.frame_wall[(stamp.sec, stamp.nanosec)] = time.perf_counter()
        if len(rec.frame_wall) > _FRAME_WALL_KEPT:
            rec.frame_wall.pop(next(iter(rec.frame_wall)))
        rec.frames += 1

    def _commands(self, rec: _Record) -> float | None:
        """Take the commands received: the newest valid target becomes the goal; returns the
        gripper command to apply (None: keep)."""
        now = self.bridge._sim_now
        targets, grip = self.io.take_commands()
        gripper = None
        if grip is not None and grip[1] >= rec.wall_start and math.isfinite(grip[0]):
            gripper = grip[0]
            if grip[1] != rec.last_gripper:
                rec.last_gripper = grip[1]
                rec.gripper_commands += 1
        for msg in targets:
            got = rec.filter.accept(msg, now)
            if got is None:
                continue
            self._target = got
            g = self.arm.gripper if gripper is None else float(np.clip(gripper, -1.0, 1.0))
            rec.targets.append([round(self.arm.time, 4), *got[0].tolist(), g])
            rec.ages_ms.append((now - cv.stamp_to_sec(msg.header.stamp)) * 1e3)
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            if key in rec.frame_wall:
                rec.roundtrip_ms.append((time.perf_counter() - rec.frame_wall[key]) * 1e3)
        return gripper

    def _pace(self, wall0: float, sim_elapsed: float) -> None:
        rtf = float(self.P["max_real_time_factor"])
        if rtf > 0:
            ahead = sim_elapsed / rtf - (time.perf_counter() - wall0)
            if ahead > 0:
                time.sleep(ahead)

    def _result(self, ep: int, init: int, outcome: str, rec: _Record, wall: float) -> dict:
        sim, arm = self.bridge.sim, self.arm
        return {
            "episode": ep,
            "init_state": init,
            "layout": sim.layout.record(),
            "seed": sim.episode_seed,
            "outcome": outcome,
            "steps": sim.step_count,  # control steps
            "control_freq": sim.cfg.control_freq,
            "duration_s": arm.time,  # simulated seconds
            "max_duration_s": sim.cfg.max_steps / sim.cfg.control_freq,
            "wall_s": wall,
            "real_time_factor": arm.time / wall if wall > 0 else None,
            "camera_frames": rec.frames,
            "held_steps": rec.held,
            "executed_targets": rec.filter.accepted,
            "ignored_targets": rec.filter.counts(),
            "gripper_commands": rec.gripper_commands,
            "max_speed_mps": self.max_speed,
            "max_angular_speed_rps": self.max_angular_speed,
            "targets": rec.targets,
            "setting": dataclasses.asdict(sim.cfg),
            "target_age_ms": latency_summary(rec.ages_ms),
            "roundtrip_ms": latency_summary(rec.roundtrip_ms),
        }
