"""Command gating: what may leave the node as a robot command (pure, no ROS).

A chunk becomes a command only when the executed step is finite, its ray met the height plane,
its confidence reaches `min_confidence`, and then its position is clamped into the workspace
box and limited to `max_step_m` from the current EEF. Under a "streaming" controller (one that
tracks the newest target continuously) a command is also limited to `max_speed_mps` x the
time since the previous command, and its rotation from the current EEF orientation to
`max_angular_speed_rps` x that time (slerp toward the target). Everything else is reported
with the reason and never sent. The watchdog reports which inputs are stale; while any is, the node
publishes no command (the robot holds its last target; nothing is ever zeroed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from para_ros.core.action_codec import ActionChunk
from para_ros.core.contract import CONTROLLERS, EULER_CONVENTION

# Command.limits: what changed a command (in the order they are applied).
LIMITS = ("workspace", "max_step", "max_speed", "max_angular_speed")


@dataclass(frozen=True)
class SafetyConfig:
    """The gate's settings. Lengths in metres (world frame), times in seconds, angles in
    radians. `controller` is a contract controller: "reach_then_observe" (only `max_step_m`
    bounds a command; the speed fields are ignored) or "streaming" (also `max_speed_mps` and
    `max_angular_speed_rps` x the time since the previous command; `nominal_period_s`, the
    model's window.dt, is that time for a first command or one without a stamp). Raises
    ValueError naming a bad value."""

    workspace_min: tuple[float, float, float] = (-10.0, -10.0, -10.0)  # world, metres
    workspace_max: tuple[float, float, float] = (10.0, 10.0, 10.0)
    max_step_m: float = 0.05  # largest translation of one command from the current EEF
    min_confidence: float = 0.0
    execute_step: int = 0  # which step of the chunk is sent as the EEF target
    # StallGuard: after this many consecutive commands that left the EEF where it was (same
    # gripper command), execute a later step of the chunk (0 = off)
    stall_patience: int = 0
    controller: str = "reach_then_observe"
    max_speed_mps: float | None = None  # streaming: metres per second
    max_angular_speed_rps: float | None = None  # streaming: radians per second
    nominal_period_s: float | None = None  # streaming: seconds between frames (window.dt)

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min), np.asarray(self.workspace_max)
        if lo.shape != (3,) or hi.shape != (3,) or not (hi > lo).all():
            raise ValueError(
                f"workspace_min {self.workspace_min} must be < workspace_max "
                f"{self.workspace_max} on every axis (3 values each, metres)"
            )
        if not self.max_step_m > 0:
            raise ValueError(f"max_step_m must be > 0, got {self.max_step_m}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.execute_step < 0:
            raise ValueError(f"execute_step must be >= 0, got {self.execute_step}")
        if self.stall_patience < 0:
            raise ValueError(f"stall_patience must be >= 0, got {self.stall_patience}")
        if self.controller not in CONTROLLERS:
            raise ValueError(f"controller must be one of {CONTROLLERS}, got {self.controller!r}")
        for name in ("max_speed_mps", "max_angular_speed_rps", "nominal_period_s"):
            v = getattr(self, name)
            if v is None and self.streaming:
                raise ValueError(
                    f"{name} is required by the streaming controller (a finite number > 0; "
                    "nominal_period_s: the model's window.dt)"
                )
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v}")

    @property
    def streaming(self) -> bool:
        return self.controller == "streaming"


class Reason(str):
    """A refusal: its text (what and why, with the values) and a stable `code`, one of the
    PolicyAction STATUS_* constants (msg/PolicyAction.msg)."""

    code: str

    def __new__(cls, code: str, text: str) -> Reason:
        obj = super().__new__(cls, text)
        obj.code = code
        return obj


@dataclass(frozen=True)
class Command:
    position: np.ndarray  # (3,) world, metres, after clamping and the step/speed limits
    quat_xyzw: np.ndarray  # (4,) x, y, z, w; after the angular speed limit
    euler: np.ndarray  # (3,) scipy "xyz" radians, of quat_xyzw
    gripper: float
    clamped: bool  # a limit changed the command
    step: int
    limits: tuple[str, ...] = ()  # what changed it: LIMITS entries, in the order applied

    @property
    def limits_text(self) -> str:
        """What limited the command, e.g. "limited by workspace, max_speed" (the PolicyAction
        status_detail of an ok_clamped command); empty when nothing did."""
        return f"limited by {', '.join(self.limits)}" if self.limits else ""


def gate(
    chunk: ActionChunk,
    current_eef: np.ndarray,
    cfg: SafetyConfig,
    advance: int = 0,
    elapsed_s: float | None = None,
    current_quat_xyzw: np.ndarray | None = None,
) -> tuple[Command | None, str]:
    """(command, "") when the chunk may be executed, else (None, reason). `advance` (from
    StallGuard) executes that many steps past `execute_step`, at most the chunk's last.

    current_eef: (3,) world metres. Streaming controller only (ignored otherwise):
    `elapsed_s`, seconds since the previous command (None: `cfg.nominal_period_s`; <= 0: no
    motion allowed, the command is the current EEF position and orientation), and
    `current_quat_xyzw`, (4,) x, y, z, w, the current EEF orientation (None: the rotation is
    not limited)."""
    T = len(chunk.positions)
    k = cfg.execute_step
    if k >= T:
        return None, Reason(
            "refused_execute_step", f"execute_step {k} is outside the chunk of {T} steps"
        )
    k = min(k + advance, T - 1)
    if not chunk.valid[k]:
        return None, Reason(
            "refused_ray", f"step {k}: ray does not meet the height plane ({chunk.reasons[k]})"
        )
    values = [
        chunk.positions[k],
        chunk.quat_xyzw[k],
        chunk.euler[k],
        [chunk.gripper[k]],
        [chunk.confidence[k]],
    ]
    if not all(np.isfinite(v).all() for v in values):
        return None, Reason("refused_nonfinite", f"step {k}: non-finite model output")
    if chunk.confidence[k] < cfg.min_confidence:
        return None, Reason(
            "refused_low_confidence",
            f"step {k}: confidence {chunk.confidence[k]:.3f} below min_confidence "
            f"{cfg.min_confidence:.3f}",
        )
    current = np.asarray(current_eef, dtype=np.float64)
    if not np.isfinite(current).all():
        return None, Reason("refused_eef", "current EEF position is not finite")
    lo, hi = np.asarray(cfg.workspace_min), np.asarray(cfg.workspace_max)
    if np.any(current < lo) or np.any(current > hi):
        # a step from outside the box may end outside it: never send such a command
        return None, Reason(
            "refused_eef",
            f"current EEF {np.array2string(current, precision=3)} m is outside the workspace "
            f"box {list(cfg.workspace_min)} .. {list(cfg.workspace_max)} (a wrong EEF pose, "
            "frame or box)",
        )
    quat, euler, turned = chunk.quat_xyzw[k], chunk.euler[k], ()
    bound, step_limit, elapsed = translation_bound(cfg, elapsed_s)
    if cfg.streaming and current_quat_xyzw is not None:
        cq = np.asarray(current_quat_xyzw, dtype=np.float64)
        if cq.shape != (4,) or not np.isfinite(cq).all() or np.linalg.norm(cq) < 1e-6:
            return None, Reason(
                "refused_eef",
                f"current EEF orientation {np.array2string(cq, precision=3)} is not a finite "
                "non-zero (x, y, z, w) quaternion",
            )
        quat, euler, turned = limit_rotation(cq, quat, euler, cfg.max_angular_speed_rps * elapsed)
    # clip into the box, then limit the step: both ends lie in the (convex) box, so the
    # limited target does too
    target = np.clip(chunk.positions[k], lo, hi)
    limits = ("workspace",) if not np.array_equal(target, chunk.positions[k]) else ()
    delta = target - current
    dist = float(np.linalg.norm(delta))
    if dist > bound:
        target = current + delta * (bound / dist)
        limits += (step_limit,)
    clamped = bool(turned) or not np.allclose(target, chunk.positions[k], atol=1e-12)
    return Command(
        position=target,
        quat_xyzw=quat,
        euler=euler,
        gripper=float(chunk.gripper[k]),
        clamped=clamped,
        step=k,
        limits=limits + turned,
    ), ""


def translation_bound(cfg: SafetyConfig, elapsed_s: float | None) -> tuple[float, str, float]:
    """(bound in metres, the LIMITS entry it comes from, elapsed seconds used): `max_step_m`
    ("max_step"); streaming: min(max_step_m, max_speed_mps x elapsed) with elapsed =
    `elapsed_s` clipped at 0 (None: `nominal_period_s`), "max_speed" when the speed bounds."""
    if not cfg.streaming:
        return cfg.max_step_m, "max_step", 0.0
    elapsed = cfg.nominal_period_s if elapsed_s is None else max(float(elapsed_s), 0.0)
    if cfg.max_speed_mps * elapsed < cfg.max_step_m:
        return cfg.max_speed_mps * elapsed, "max_speed", elapsed
    return cfg.max_step_m, "max_step", elapsed


def limit_rotation(
    current_xyzw: np.ndarray, target_xyzw: np.ndarray, target_euler: np.ndarray, max_angle: float
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(quat_xyzw (4,), euler (3,) scipy "xyz" radians, limits): the target orientation, or,
    when it is more than `max_angle` radians (>= 0) from `current_xyzw`, the orientation that
    far along the shortest arc (slerp) toward it, with limits ("max_angular_speed",)."""
    cur, tgt = Rotation.from_quat(current_xyzw), Rotation.from_quat(target_xyzw)
    angle = float((cur.inv() * tgt).magnitude())
    if angle <= max_angle:
        return target_xyzw, target_euler, ()
    r = Slerp([0.0, 1.0], Rotation.concatenate([cur, tgt]))([max_angle / angle])[0]
    return r.as_quat(), r.as_euler(EULER_CONVENTION), ("max_angular_speed",)


class StallGuard:
    """Breaks closed-loop fixed points of a chunking policy.

    Executing step k of each new chunk can settle where the model keeps predicting the current
    pose for step k (the recorded demos hold still while the gripper closes or opens, and the
    argmax cell cannot tell the 2nd held frame from the 6th): the robot and the image stop
    changing, so the command never changes again. After `patience` consecutive observations
    with the EEF within `tolerance_m` of the previous one and the same gripper command, the
    guard advances execution one step further into the chunk per further `patience` still
    steps; any motion or gripper change resets it. Pure and deterministic: the node and the
    in-process evaluation feed it the same sequence and execute the same targets.
    """

    def __init__(self, patience: int, tolerance_m: float = 0.002):
        if patience < 0:
            raise ValueError(f"stall patience must be >= 0, got {patience}")
        self.patience = patience
        self.tolerance_m = tolerance_m
        self.still = 0
        self._eef: np.ndarray | None = None
        self._gripper: float | None = None

    def observe(self, eef: np.ndarray, gripper_command: float | None) -> int:
        """Feed the current EEF (world, metres) and the last gripper command sent (None when
        the previous frame sent none: a refusal restarts the count); returns the advance for
        the next command (0 while the robot moves)."""
        eef = np.asarray(eef, dtype=np.float64)
        moved = self._eef is None or np.linalg.norm(eef - self._eef) >= self.tolerance_m
        if moved or gripper_command != self._gripper:
            self.still = 0
        else:
            self.still += 1
        self._eef, self._gripper = eef, gripper_command
        if not self.patience or self.still < self.patience:
            return 0
        return self.still // self.patience


class Watchdog:
    """Tracks when each input was last fresh; reports which are stale at time `now`."""

    def __init__(self, timeout_s: float):
        if not timeout_s > 0:
            raise ValueError(f"watchdog timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self.last: dict[str, float] = {}

    def feed(self, name: str, now: float) -> None:
        self.last[name] = now

    def stale(self, now: float, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if now - self.last.get(n, -np.inf) > self.timeout_s]
