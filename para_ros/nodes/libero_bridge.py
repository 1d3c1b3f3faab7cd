"""`para_libero_bridge`: one LIBERO task as a ROS 2 robot, for closed-loop tests of the node.

Publishes the upright agentview image (rgb8), CameraInfo, JointState, the EEF PoseStamped,
the camera PoseStamped (world <- camera, OpenCV axes) and para_ros/EpisodeStatus; executes
para_ros/PolicyAction (its gated `command`, teleport servo; or holds when the node published
no command). Lock-step mode (default): after each observation the simulation waits for the
PolicyAction stamped with that observation (deterministic: for tests and evaluation).
Real-time mode: the arm keeps moving while the policy computes. Each tick (1 / `control_rate`;
0 = the model's dt, spec.window.dt) publishes an observation and at once executes the newest
command received so far, the answer to an earlier frame (one tick old when the node answers
within a tick); the tick's rest is slept. `stale_steps` in the results counts ticks that ran a
command older than the previous frame's, `held_steps` those with none.
Driver mode (para_ros.nodes.driver_mode): the arm speaks only what real drivers publish
(/joint_states, /tf, /tf_static, a compressed distorted camera with its CameraInfo, /clock) and
executes PoseStamped targets and Float64 gripper commands as a streaming Cartesian controller,
free-running on simulation time; an episode lasts max_steps x the model's dt simulated seconds.
Runs `episodes` episodes of one setting, writes the results JSON, and exits.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.time import Time as RosTime
from rosgraph_msgs.msg import Clock
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, JointState

from para_ros.core import geometry
from para_ros.msg import EpisodeStatus, PolicyAction
from para_ros.nodes import conversions as cv
from para_ros.nodes.driver_mode import DRIVER_PARAMS, DriverEpisodes
from para_ros.nodes.entry import (
    enable_stack_dumps,
    ignore_further_interrupts,
    print_help,
    spin_until_shutdown,
)
from para_ros.runtime.executor import Follower
from para_ros.sim.evaluate import latency_summary, save_gif
from para_ros.sim.libero_sim import MAX_STEPS, LiberoSim, SimConfig, SimError

PARAMS = {
    "suite": ("libero_spatial", "LIBERO suite"),
    "task_id": (0, "task index in the suite"),
    "image_size": (
        128,
        "square agentview render size, px (128: the shipped model's input size, at which its "
        "demos were rendered)",
    ),
    "episodes": (1, "episodes to run, then exit"),
    "first_init": (0, "first official init state; episode k uses first_init + k"),
    "max_steps": (
        MAX_STEPS,
        "policy steps per episode (driver: the episode lasts max_steps x the model's dt "
        "simulated seconds)",
    ),
    "seed": (
        0,
        "base seed: each episode's reset is seeded from (seed, init state) as in para-eval-sim "
        "(para_ros.sim.layouts.episode_seed), so runs agree whatever ran before",
    ),
    "model_path": (
        "",
        "ONNX model the policy node runs: the bridge executes its chunks with the model's "
        "executor (PolicySpec executor.zero_rotation); '' = keep the start orientation",
    ),
    "rotation": (
        "model",
        "model (the model's executor), zero (keep the start orientation) or predicted "
        "(execute the command's orientation)",
    ),
    "action_scale": (1.0, "scale of the displacement toward each target"),
    "camera_theta_deg": (0.0, "viewpoint OOD: camera orbit off-axis angle, degrees"),
    "camera_phi_deg": (0.0, "viewpoint OOD: orbit azimuth, degrees"),
    "shift_dx": (0.0, "position OOD: object shift along world x, metres"),
    "shift_dy": (0.0, "position OOD: object shift along world y, metres"),
    "mode": (
        "lockstep",
        "lockstep (wait for each answer), realtime, or driver (the topics of real drivers, a "
        "streaming controller, simulation time)",
    ),
    "action_timeout": (
        5.0,
        "lock-step: seconds to wait for the answer to an observation (re-sent every "
        "resend_period); past it, or 1 s after the last publisher of action_topic is gone, the "
        "run stops with an error (the policy node died, or skips every frame: its /diagnostics "
        "say why)",
    ),
    "resend_period": (
        0.3,
        "lock-step: seconds before an unanswered observation is re-sent (with a fresh stamp; "
        "keep it below the node's max_image_age)",
    ),
    "control_rate": (
        0.0,
        "real-time mode: policy steps per second (0 = 1 / the model's dt, else 10 without a "
        "model_path)",
    ),
    "results_path": ("", "results JSON written at the end ('' = none)"),
    "gif_path": (
        "",
        "GIF of the first episode with the predicted trajectory drawn on it ('' = none; not "
        "in driver mode)",
    ),
    "world_frame": ("world", "frame id of poses"),
    "camera_frame": ("agentview_optical", "frame id of the image"),
    "action_topic": ("/para_policy/action", "para_ros/PolicyAction to execute"),
    "startup_timeout": (
        60.0,
        "seconds to wait for the policy node to subscribe (driver: for a publisher of "
        "target_topic; 0 = start at once)",
    ),
    "publish_clock": (
        False,
        "publish the simulation time on /clock and stamp everything with it (the policy node "
        "then runs with use_sim_time:=true); it advances only as the simulation steps; always "
        "on in driver mode",
    ),
    **DRIVER_PARAMS,
}
MODES = ("lockstep", "realtime", "driver")
SIM_CLOCK_START = 1.0  # seconds: /clock starts here (0 means "no time yet" to a ROS clock)
EPISODE_CLOCK_GAP = 1.0  # seconds of simulation clock between two episodes


class PolicyLost(RuntimeError):
    """The policy node disappeared during a run."""


class Interrupted(RuntimeError):
    """The bridge was asked to stop (SIGINT/SIGTERM) during a run."""


class LiberoBridge(Node):
    def __init__(self):
        super().__init__("para_libero_bridge")
        for name, (default, desc) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc))
        P = {n: self.get_parameter(n).value for n in PARAMS}
        if P["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {P['mode']!r}")
        if P["rotation"] not in ("model", "zero", "predicted"):
            raise ValueError(f"rotation must be model, zero or predicted, got {P['rotation']!r}")
        if float(P["control_rate"]) < 0:
            raise ValueError(
                f"control_rate must be >= 0 (0: the model's dt), got {P['control_rate']}"
            )
        self.P = P
        self.period, period_source = self._tick(P)
        if P["mode"] == "realtime":
            self.get_logger().info(
                f"real time: a tick every {self.period:.3f} s ({period_source})"
            )
        self.zero_rotation, rot_source = self._zero_rotation(P)
        self.get_logger().info(f"executing rotation: zero={self.zero_rotation} ({rot_source})")
        self.driver: DriverEpisodes | None = None
        if P["mode"] == "driver":
            spec = self._spec(P)
            # an episode of max_steps policy steps of the model's dt, in control steps
            control_freq = int(P["control_freq"])
            max_steps = round(int(P["max_steps"]) * self.period * control_freq)
            self.get_logger().info(
                f"driver: episodes of {max_steps / control_freq:.2f} simulated seconds "
                f"(max_steps x {self.period:.3f} s, {period_source})"
            )
        else:
            control_freq, max_steps = SimConfig.control_freq, int(P["max_steps"])
        self.cfg = SimConfig(
            suite=P["suite"],
            task_id=int(P["task_id"]),
            image_size=int(P["image_size"]),
            max_steps=max_steps,
            zero_rotation=self.zero_rotation,
            action_scale=float(P["action_scale"]),
            camera_theta_deg=float(P["camera_theta_deg"]),
            camera_phi_deg=float(P["camera_phi_deg"]),
            shift_dx=float(P["shift_dx"]),
            shift_dy=float(P["shift_dy"]),
            seed=int(P["seed"]),
            control_freq=control_freq,
        )
        self.sim: LiberoSim | None = None  # built in the worker: GL contexts are per thread
        qos = QoSProfile(depth=10)
        self.pub_status = self.create_publisher(EpisodeStatus, "~/episode_status", qos)
        self.pub_clock = (
            self.create_publisher(Clock, "/clock", qos)
            if P["publish_clock"] or P["mode"] == "driver"
            else None
        )
        self._clock_offset = SIM_CLOCK_START  # simulation clock at the current episode's reset
        self._sim_now = SIM_CLOCK_START
        self._cond = threading.Condition()
        self._answers: dict[tuple[int, int], PolicyAction] = {}
        self._latest: PolicyAction | None = None
        if P["mode"] == "driver":  # its own topics only: no image, eef_pose, PolicyAction
            self.driver = DriverEpisodes(self, spec)
        else:
            self.pub_img = self.create_publisher(Image, "image", qos)
            self.pub_info = self.create_publisher(CameraInfo, "camera_info", qos)
            self.pub_js = self.create_publisher(JointState, "joint_states", qos)
            self.pub_eef = self.create_publisher(PoseStamped, "eef_pose", qos)
            self.pub_cam = self.create_publisher(PoseStamped, "camera_pose", qos)
            self.create_subscription(PolicyAction, P["action_topic"], self._on_action, qos)
        self.results: list[dict] = []
        self.done = threading.Event()
        self.stop = threading.Event()  # set by main() on shutdown: the worker ends the run
        self.worker = threading.Thread(target=self._run, daemon=True)
        self.worker.start()

    @staticmethod
    def _tick(P) -> tuple[float, str]:
        """Real-time tick (seconds) and where it came from."""
        if float(P["control_rate"]) > 0:
            return 1.0 / float(P["control_rate"]), "parameter control_rate"
        if not P["model_path"]:
            return 0.1, "no model_path: 10 Hz"
        return LiberoBridge._spec(P).window.dt, f"the dt of {P['model_path']}"

    @staticmethod
    def _zero_rotation(P) -> tuple[bool, str]:
        if P["rotation"] != "model":
            return P["rotation"] == "zero", "parameter rotation"
        if not P["model_path"]:
            return True, "no model_path: the default executor"
        return LiberoBridge._spec(P).executor.zero_rotation, f"executor of {P['model_path']}"

    @staticmethod
    def _spec(P):
        """The model's PolicySpec (None without model_path)."""
        if not P["model_path"]:
            return None
        from para_ros.core.onnx_metadata import read_spec

        return read_spec(P["model_path"])  # FileNotFoundError / SpecError: clear start error

    def _stamp(self, obs=None):
        """Now: the simulation clock (published on /clock first) or the node's clock."""
        if self.pub_clock is None:
            return self.get_clock().now().to_msg()
        return self._sim_stamp(None if obs is None else float(obs.time))

    def _sim_stamp(self, t: float | None):
        """The simulation clock `t` seconds after the current episode's reset (None: the
        last one), published on /clock; returns it as a builtin_interfaces/Time."""
        if t is not None:
            self._sim_now = self._clock_offset + t
        stamp = RosTime(nanoseconds=round(self._sim_now * 1e9)).to_msg()
        self.pub_clock.publish(Clock(clock=stamp))
        return stamp

    def check_stop(self, ep: int) -> None:
        """Raise Interrupted when main() asked the worker to stop."""
        if self.stop.is_set():
            raise Interrupted(f"stopped in episode {ep} at step {self.sim.step_count}")

    def _on_action(self, msg: PolicyAction) -> None:
        with self._cond:
            self._answers[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
            self._latest = msg
            self._cond.notify_all()

    def _publish_obs(self, obs) -> tuple[int, int]:
        stamp = self._stamp(obs)
        world, camf = self.P["world_frame"], self.P["camera_frame"]
        info = CameraInfo()
        info.header.stamp, info.header.frame_id = stamp, camf
        info.height = info.width = self.cfg.image_size
        info.k = obs.K.reshape(-1).tolist()
        info.p = np.hstack([obs.K, np.zeros((3, 1))]).reshape(-1).tolist()
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        self.pub_info.publish(info)
        q_cam = Rotation.from_matrix(obs.T_world_cam[:3, :3]).as_quat()
        self.pub_cam.publish(cv.make_pose_stamped(obs.T_world_cam[:3, 3], q_cam, stamp, world))
        js = JointState()
        js.header.stamp = stamp
        js.name = [f"robot0_joint{i + 1}" for i in range(len(obs.joints))] + [
            "robot0_finger_left",
            "robot0_finger_right",
        ]
        js.position = [*obs.joints.tolist(), *obs.gripper_qpos.tolist()]
        self.pub_js.publish(js)
        self.pub_eef.publish(cv.make_pose_stamped(obs.eef_pos, obs.eef_quat, stamp, world))
        self.pub_img.publish(cv.rgb_to_image(obs.image, stamp, camf))
        return stamp.sec, stamp.nanosec

    def _status(self, ep: int, init: int, outcome: str, detail: str = "") -> None:
        s = EpisodeStatus()
        s.header.stamp = self._stamp()
        s.header.frame_id = self.P["world_frame"]
        s.suite, s.task_id, s.language = self.cfg.suite, self.cfg.task_id, self.sim.language
        s.setting = (
            "viewpoint_ood"
            if self.cfg.camera_theta_deg
            else "position_ood"
            if (self.cfg.shift_dx or self.cfg.shift_dy)
            else "in_distribution"
        )
        s.camera_theta = float(np.radians(self.cfg.camera_theta_deg))
        s.camera_phi = float(np.radians(self.cfg.camera_phi_deg))
        s.shift_dx, s.shift_dy = self.cfg.shift_dx, self.cfg.shift_dy
        s.episode, s.init_state = ep, init
        s.seed = int(self.sim.episode_seed) if self.sim.episode_seed is not None else -1
        s.step, s.max_steps = self.sim.step_count, self.cfg.max_steps
        s.outcome = {"RUNNING": 0, "PLACE": 1, "GRASP": 2, "MISS": 3}.get(outcome, 4)
        s.done = outcome != "RUNNING"
        s.detail = detail
        self.pub_status.publish(s)

    def _wait_for_policy(self) -> bool:
        end = time.monotonic() + float(self.P["startup_timeout"])
        while time.monotonic() < end and rclpy.ok():
            if self.pub_img.get_subscription_count() and self.count_publishers(
                self.P["action_topic"]
            ):
                time.sleep(0.5)  # let the remaining endpoints match too
                return True
            time.sleep(0.1)
        return False

    def _answer(self, key, obs) -> PolicyAction | None:
        """Wait for the answer to observation `key` (None only at shutdown). An unanswered
        observation is published again every `resend_period` s with a fresh stamp (the same
        data: the episode stays deterministic): a frame can be lost before all endpoints have
        matched, or reach the node before the camera pose; re-sending the old stamp would only
        make it stale. Raises PolicyLost after `action_timeout` s without an answer, or 1 s
        after the last publisher of action_topic is gone: in lock-step nothing can happen
        without the policy, so the run stops within seconds instead of holding step after
        step."""
        keys = {key}
        start = time.monotonic()
        gone_since = None
        with self._cond:
            while True:
                got = self._cond.wait_for(
                    lambda: (
                        bool(keys & self._answers.keys()) or not rclpy.ok() or self.stop.is_set()
                    ),
                    timeout=float(self.P["resend_period"]),
                )
                if got:
                    break
                now = time.monotonic()
                if self.count_publishers(self.P["action_topic"]):
                    gone_since = None
                else:
                    gone_since = gone_since or now
                if now - start > float(self.P["action_timeout"]) or (
                    gone_since is not None and now - gone_since > 1.0
                ):
                    why = (
                        "and no publisher is left: the policy node is gone"
                        if gone_since is not None
                        else "(action_timeout): the policy node is gone or skips every frame "
                        "(its /diagnostics say why)"
                    )
                    raise PolicyLost(
                        f"no answer on {self.P['action_topic']} for {now - start:.1f} s {why}"
                    )
                self._cond.release()  # publish without holding the answers' lock
                try:
                    keys.add(self._publish_obs(obs))
                finally:
                    self._cond.acquire()
            hit = next((k for k in keys if k in self._answers), None)
            msg = self._answers.get(hit) if hit else None
            self._answers.clear()  # answers to older frames are of no use
            return msg

    def _run(self) -> None:
        try:
            # MuJoCo's offscreen GL context belongs to the thread that creates it: build and
            # render the simulation in this thread only (rendering from another thread gave
            # other pixels than the same state rendered in-process).
            self.sim = LiberoSim(self.cfg)
            if self.driver is not None:
                self.driver.attach(self.sim)
                ready = self.driver.wait_for_commander(float(self.P["startup_timeout"]))
                episode = self.driver.episode
            else:
                ready, episode = self._wait_for_policy(), self._episode
            if not ready:
                self.get_logger().error("no policy node subscribed within startup_timeout")
                self.results.append({"outcome": "ERROR", "detail": "no policy node"})
                return
            for ep in range(int(self.P["episodes"])):
                if self.stop.is_set():
                    raise Interrupted(f"stopped before episode {ep}")
                self.results.append(episode(ep, int(self.P["first_init"]) + ep))
                self._clock_offset = self._sim_now + EPISODE_CLOCK_GAP
        except Interrupted as exc:
            self.get_logger().warning(f"interrupted: {exc}")
            self.results.append({"outcome": "INTERRUPTED", "detail": str(exc)})
        except Exception as exc:  # report, never hang
            self.get_logger().error(f"bridge failed: {type(exc).__name__}: {exc}")
            self.results.append({"outcome": "ERROR", "detail": f"{type(exc).__name__}: {exc}"})
        finally:
            self._write_results()
            if self.sim is not None:
                self.sim.close()
            self.done.set()

    def _episode(self, ep: int, init: int) -> dict:
        try:
            obs = self.sim.reset(init)
        except SimError as exc:
            self._status(ep, init, "ERROR", str(exc))
            return {"episode": ep, "init_state": init, "outcome": "REFUSED", "detail": str(exc)}
        follower, targets = Follower(open_gripper=-1.0), []  # LIBERO: -1 open
        inference_ms, roundtrip_ms, frames = [], [], []
        record = ep == 0 and bool(self.P["gif_path"])
        period = self.period
        stale, sent_step = 0, {}  # real time: observation key -> the step it was sent at
        with self._cond:
            self._latest = None  # never a command of the previous episode
        while True:
            if self.stop.is_set():
                raise Interrupted(f"stopped in episode {ep} at step {self.sim.step_count}")
            sent = time.perf_counter()
            key = self._publish_obs(obs)
            sent_step[key] = self.sim.step_count
            if self.P["mode"] == "lockstep":
                msg = self._answer(key, obs)
                if msg is not None:  # observation out -> action in, through both nodes
                    roundtrip_ms.append((time.perf_counter() - sent) * 1e3)
            else:  # the newest command now; this frame's answer arrives while the arm moves
                with self._cond:
                    msg = self._latest
                if msg is not None:
                    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
                    stale += sent_step.get(stamp, -1) < self.sim.step_count - 1
            if msg is not None:
                inference_ms.append(float(msg.inference_time_ms))
            if record:
                frames.append((obs.image, self._predicted_pixels(msg, obs)))
            cmd_pos = cmd_grip = quat = None
            if msg is not None and msg.command_published:
                p, q = msg.command.position, msg.command.orientation
                cmd_pos, cmd_grip = np.array([p.x, p.y, p.z]), float(msg.command_gripper)
                quat = np.array([q.x, q.y, q.z, q.w])  # used unless zero_rotation
            target, grip = follower.target(cmd_pos, cmd_grip, obs.eef_pos)
            targets.append(target.tolist())
            obs = self.sim.step_target(target, quat, grip)
            outcome = self.sim.outcome()
            self._status(ep, init, outcome)
            if outcome != "RUNNING":
                break
            if self.P["mode"] == "realtime":  # keep the tick: 1 / control_rate
                time.sleep(max(0.0, period - (time.perf_counter() - sent)))
        self.get_logger().info(
            f"episode {ep} (init {init}): {outcome} in {self.sim.step_count} steps"
        )
        if record and frames:
            save_gif(Path(self.P["gif_path"]), frames, obs.image.shape[:2])
        return {
            "episode": ep,
            "init_state": init,
            "layout": self.sim.layout.record(),
            "seed": self.sim.episode_seed,
            "outcome": outcome,
            "steps": self.sim.step_count,
            "held_steps": follower.held,
            **({"stale_steps": stale, "tick_s": period} if self.P["mode"] == "realtime" else {}),
            "targets": targets,
            "setting": dataclasses.asdict(self.cfg),
            "inference_ms": latency_summary(inference_ms),
            "roundtrip_ms": latency_summary(roundtrip_ms),
        }

    @staticmethod
    def _predicted_pixels(msg: PolicyAction | None, obs) -> np.ndarray | None:
        """The chunk's world targets projected into this frame (bridge image pixels)."""
        if msg is None or not msg.poses:
            return None
        pts = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])
        uv, _ = geometry.project(pts, obs.K, obs.T_world_cam)  # (T, 2)
        return uv[np.isfinite(uv).all(axis=1)]

    def _write_results(self) -> None:
        path = self.P["results_path"]
        if not path:
            return
        valid = [r for r in self.results if r.get("outcome") in ("PLACE", "GRASP", "MISS")]
        summary = {k: sum(r["outcome"] == k for r in valid) for k in ("PLACE", "GRASP", "MISS")}
        summary["n"] = len(valid)
        summary["requested"] = int(self.P["episodes"])
        summary["complete"] = len(valid) == summary["requested"]  # False: interrupted/failed
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".partial")
        tmp.write_text(json.dumps({"summary": summary, "episodes": self.results}, indent=1))
        tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if print_help(
        argv, "para_libero_bridge", __doc__, [(n, d, h) for n, (d, h) in PARAMS.items()]
    ):
        return 0
    enable_stack_dumps()
    rclpy.init(args=argv)
    node = None
    try:
        node = LiberoBridge()
        spin_until_shutdown(
            lambda: rclpy.spin_once(node, timeout_sec=0.1),
            rclpy.ok,
            lambda: not node.done.is_set(),
        )
    except (SimError, ValueError, FileNotFoundError, ParameterException) as exc:
        print(f"para_libero_bridge: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()
        if node is not None:
            # MuJoCo renders in the worker thread: let it end the episode, write the results
            # and close the simulation before the interpreter exits (exiting under a rendering
            # thread crashed the process with SIGSEGV on Ctrl-C)
            node.stop.set()
            node.worker.join(timeout=30.0)
            node.destroy_node()
        rclpy.try_shutdown()
    # an episode that could not run (ERROR, REFUSED) or a run cut short is a failure
    ran = [r for r in node.results if r.get("outcome") in ("PLACE", "GRASP", "MISS")]
    wanted = int(node.P["episodes"])
    if node.done.is_set() and len(ran) == wanted:
        return 0
    print(
        f"para_libero_bridge: {len(ran)} of {wanted} episodes ran "
        f"({', '.join(r['outcome'] for r in node.results if r not in ran) or 'stopped'})",
        file=sys.stderr,
        flush=True,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
