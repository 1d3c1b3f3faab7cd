"""The LIBERO Panda as a real arm's drivers present it: a streaming Cartesian pose controller,
joint states and a frame tree with the Franka + RealSense names. No ROS.

Kinematics come from MuJoCo's body poses (robot0_link0 .. robot0_link7, robot0_right_hand) and
the gripper's grip site, after each control step (`LiberoSim.step_control`), so that
world <- tcp composed from `static_transforms` and `moving_transforms` equals robosuite's
robot0_eef_pos / robot0_eef_quat (the grip site's position, the hand's orientation).

Frames (defaults: franka_description + realsense2_camera names, `FrameNames`):
    world -> panda_link0                    static: the robot base
    panda_link0 -> panda_link1 .. -> panda_link7 -> panda_hand   moving (robot_state_publisher)
    panda_hand -> panda_hand_tcp            static: the grip site, the hand's orientation
    world -> camera_link                    static: the hand-eye calibration (REP-103 body:
                                            x forward, y left, z up)
    camera_link -> camera_color_optical_frame   static: z forward, x right, y down; world <-
                                            optical is the agentview camera (orbited as set)

Control (`DriverArm.step`): each control step moves the OSC goal (the setpoint) toward the
newest target by at most max_speed x dt (and max_angular_speed x dt in rotation), as a
Cartesian target-frame controller or a servo's pose tracking does; the OSC then pulls the
arm toward the setpoint. Targets are the TCP pose in world, quaternion (x, y, z, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core import geometry
from para_ros.core.plausibility import _R_BODY_OPTICAL as R_LINK_OPTICAL
from para_ros.sim.libero_sim import LiberoSim

MUJOCO_CHAIN = (*(f"robot0_link{i}" for i in range(8)), "robot0_right_hand")
GRIP_SITE = "gripper0_grip_site"
MUJOCO_JOINTS = (
    *(f"robot0_joint{i}" for i in range(1, 8)),
    *(f"gripper0_finger_joint{i}" for i in (1, 2)),
)
# franka_description's finger joints both open positively; robosuite's second one negatively
JOINT_SIGNS = np.array([1.0] * 8 + [-1.0])


@dataclass(frozen=True)
class FrameNames:
    """Frame and joint names of the simulated drivers (Franka + RealSense by default).

    links: the frames of MUJOCO_CHAIN in order (link0 .. link7, hand); joints: the names of
    MUJOCO_JOINTS in order (7 arm joints, 2 finger joints)."""

    world: str = "world"
    links: tuple[str, ...] = (*(f"panda_link{i}" for i in range(8)), "panda_hand")
    tcp: str = "panda_hand_tcp"
    camera_link: str = "camera_link"
    optical: str = "camera_color_optical_frame"
    joints: tuple[str, ...] = (
        *(f"panda_joint{i}" for i in range(1, 8)),
        "panda_finger_joint1",
        "panda_finger_joint2",
    )

    def __post_init__(self) -> None:
        if len(self.links) != len(MUJOCO_CHAIN):
            raise ValueError(
                f"{len(MUJOCO_CHAIN)} link frame names needed (base, 7 links, hand), got "
                f"{len(self.links)}: {list(self.links)}"
            )
        if len(self.joints) != len(MUJOCO_JOINTS):
            raise ValueError(
                f"{len(MUJOCO_JOINTS)} joint names needed (7 arm joints, 2 fingers), got "
                f"{len(self.joints)}: {list(self.joints)}"
            )


@dataclass(frozen=True)
class Transform:
    """parent <- child as a (4, 4) matrix (metres)."""

    parent: str
    child: str
    T: np.ndarray


class SetpointLimiter:
    """A Cartesian setpoint that moves toward a goal at bounded speeds.

    pos (3,) metres and quat (4,) x y z w: the setpoint; `advance` moves it toward the goal by
    at most max_speed * dt metres and max_angular_speed * dt radians (the rotation about one
    axis, slerp) and returns it. Raises ValueError for speeds that are not > 0."""

    def __init__(self, pos, quat_xyzw, max_speed: float, max_angular_speed: float):
        if not (max_speed > 0 and max_angular_speed > 0):
            raise ValueError(
                f"speed bounds must be > 0, got {max_speed} m/s and {max_angular_speed} rad/s"
            )
        self.pos = np.asarray(pos, dtype=np.float64).copy()
        self.rot = Rotation.from_quat(quat_xyzw)
        self.max_speed, self.max_angular_speed = float(max_speed), float(max_angular_speed)

    @property
    def quat(self) -> np.ndarray:
        return self.rot.as_quat()

    def advance(self, goal_pos, goal_quat_xyzw, dt: float) -> tuple[np.ndarray, np.ndarray]:
        step = np.asarray(goal_pos, dtype=np.float64) - self.pos
        dist = float(np.linalg.norm(step))
        if dist > 0:
            self.pos = self.pos + step * min(1.0, self.max_speed * dt / dist)
        delta = (Rotation.from_quat(goal_quat_xyzw) * self.rot.inv()).as_rotvec()
        angle = float(np.linalg.norm(delta))
        if angle > 0:
            frac = min(1.0, self.max_angular_speed * dt / angle)
            self.rot = Rotation.from_rotvec(delta * frac) * self.rot
        return self.pos.copy(), self.quat


class DriverArm:
    """LiberoSim's Panda driven as a streaming Cartesian controller (see the module doc).

    zero_rotation: hold the orientation LiberoSim's other modes hold (their `start_quat`
    given as the OSC goal, which orients the grip site: the gripper turns as in the model's
    demonstrations) and ignore target orientations; else execute them."""

    def __init__(
        self,
        sim: LiberoSim,
        max_speed: float,
        max_angular_speed: float,
        zero_rotation: bool,
        names: FrameNames = FrameNames(),
    ):
        self.sim, self.names, self.zero_rotation = sim, names, bool(zero_rotation)
        self.speeds = (float(max_speed), float(max_angular_speed))
        self.dt = 1.0 / sim.cfg.control_freq
        model = sim.sim.model
        self._qpos = [model.get_joint_qpos_addr(j) for j in MUJOCO_JOINTS]
        self._qvel = [model.get_joint_qvel_addr(j) for j in MUJOCO_JOINTS]
        self.limiter: SetpointLimiter | None = None
        self.gripper = -1.0

    def reset(self, init_state) -> None:
        """Start an episode (LiberoSim.reset); the setpoint is the grip site's pose, the
        gripper open, the goal the current position. Raises SimError as reset does."""
        self.sim.reset(init_state)
        site = self.sim.site_pose(GRIP_SITE)
        hand = self.sim.body_pose(MUJOCO_CHAIN[-1])
        # the OSC orients the grip site; targets orient the TCP (the hand's orientation)
        self._R_hand_site = hand[:3, :3].T @ site[:3, :3]
        q_site = Rotation.from_matrix(site[:3, :3]).as_quat()
        self.limiter = SetpointLimiter(site[:3, 3], q_site, *self.speeds)
        self._goal_pos = site[:3, 3].copy()
        self._goal_quat = self.sim.start_quat.copy() if self.zero_rotation else q_site
        self.gripper = -1.0

    @property
    def time(self) -> float:
        """Simulated seconds since the episode's reset."""
        return float(self.sim.sim.data.time) - self.sim.t0

    def step(self, target_pos=None, target_quat_xyzw=None, gripper: float | None = None) -> None:
        """One control step toward the newest target (world, TCP pose; None = keep the
        previous goal) with the newest gripper command (-1 open .. +1 closed; None = keep)."""
        if target_pos is not None:
            self._goal_pos = np.asarray(target_pos, dtype=np.float64).copy()
        if target_quat_xyzw is not None and not self.zero_rotation:
            R_tcp = Rotation.from_quat(target_quat_xyzw).as_matrix()
            self._goal_quat = Rotation.from_matrix(R_tcp @ self._R_hand_site).as_quat()
        if gripper is not None:
            self.gripper = float(np.clip(gripper, -1.0, 1.0))
        pos, quat = self.limiter.advance(self._goal_pos, self._goal_quat, self.dt)
        self.sim.step_control(pos, quat, self.gripper)

    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(names, positions rad|m, velocities rad/s|m/s, efforts N·m|N) of the 9 joints."""
        data = self.sim.sim.data
        pos = np.array([data.qpos[a] for a in self._qpos]) * JOINT_SIGNS
        vel = np.array([data.qvel[a] for a in self._qvel]) * JOINT_SIGNS
        eff = np.array([data.qfrc_actuator[a] for a in self._qvel]) * JOINT_SIGNS
        return list(self.names.joints), pos, vel, eff

    def moving_transforms(self) -> list[Transform]:
        """panda_link0 -> panda_link1 ... -> panda_hand: each body relative to its parent."""
        poses = [self.sim.body_pose(b) for b in MUJOCO_CHAIN]
        links = self.names.links
        return [
            Transform(links[i], links[i + 1], geometry.invert_pose(poses[i]) @ poses[i + 1])
            for i in range(len(poses) - 1)
        ]

    def tcp_pose(self) -> np.ndarray:
        """(4, 4) world <- TCP: the grip site's position, the hand's orientation (robosuite's
        robot0_eef_pos / robot0_eef_quat)."""
        T = self.sim.body_pose(MUJOCO_CHAIN[-1])
        T[:3, 3] = self.sim.site_pose(GRIP_SITE)[:3, 3]
        return T

    def static_transforms(self) -> list[Transform]:
        """world -> panda_link0, panda_hand -> panda_hand_tcp, world -> camera_link,
        camera_link -> camera_color_optical_frame (one /tf_static message's contents)."""
        n = self.names
        hand = self.sim.body_pose(MUJOCO_CHAIN[-1])
        hand_tcp = np.eye(4)  # the TCP keeps the hand's orientation
        hand_tcp[:3, 3] = hand[:3, :3].T @ (self.tcp_pose()[:3, 3] - hand[:3, 3])
        link_optical = np.eye(4)
        link_optical[:3, :3] = R_LINK_OPTICAL
        world_link = self.sim.camera_pose() @ geometry.invert_pose(link_optical)
        return [
            Transform(n.world, n.links[0], self.sim.body_pose(MUJOCO_CHAIN[0])),
            Transform(n.links[-1], n.tcp, hand_tcp),
            Transform(n.world, n.camera_link, world_link),
            Transform(n.camera_link, n.optical, link_optical),
        ]
