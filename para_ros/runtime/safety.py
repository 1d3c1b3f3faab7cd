"""Command gating: what may leave the node as a robot command (pure, no ROS).

A chunk becomes a command only when the executed step is finite, its ray met the height plane,
its confidence reaches `min_confidence`, and then its position is clamped into the workspace
box and limited to `max_step_m` from the current EEF. Everything else is reported with the
reason and never sent. The watchdog holds the last safe target (never zeros) while inputs are
stale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from para_ros.core.action_codec import ActionChunk


@dataclass(frozen=True)
class SafetyConfig:
    workspace_min: tuple[float, float, float] = (-10.0, -10.0, -10.0)  # world, metres
    workspace_max: tuple[float, float, float] = (10.0, 10.0, 10.0)
    max_step_m: float = 0.05  # largest translation of one command from the current EEF
    min_confidence: float = 0.0
    execute_step: int = 0  # which step of the chunk is sent as the EEF target

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


@dataclass(frozen=True)
class Command:
    position: np.ndarray  # (3,) world, metres, after clamping and step limit
    quat_xyzw: np.ndarray  # (4,)
    euler: np.ndarray  # (3,)
    gripper: float
    clamped: bool  # the workspace box or the step limit changed the position
    step: int


def gate(
    chunk: ActionChunk, current_eef: np.ndarray, cfg: SafetyConfig
) -> tuple[Command | None, str]:
    """(command, "") when the chunk may be executed, else (None, reason)."""
    k = cfg.execute_step
    T = len(chunk.positions)
    if k >= T:
        return None, f"execute_step {k} is outside the chunk of {T} steps"
    if not chunk.valid[k]:
        return None, f"step {k}: ray does not meet the height plane ({chunk.reasons[k]})"
    values = [
        chunk.positions[k],
        chunk.quat_xyzw[k],
        chunk.euler[k],
        [chunk.gripper[k]],
        [chunk.confidence[k]],
    ]
    if not all(np.isfinite(v).all() for v in values):
        return None, f"step {k}: non-finite model output"
    if chunk.confidence[k] < cfg.min_confidence:
        return None, (
            f"step {k}: confidence {chunk.confidence[k]:.3f} below min_confidence "
            f"{cfg.min_confidence:.3f}"
        )
    current = np.asarray(current_eef, dtype=np.float64)
    if not np.isfinite(current).all():
        return None, "current EEF position is not finite"
    target = np.clip(chunk.positions[k], cfg.workspace_min, cfg.workspace_max)
    delta = target - current
    dist = float(np.linalg.norm(delta))
    if dist > cfg.max_step_m:
        target = current + delta * (cfg.max_step_m / dist)
    clamped = not np.allclose(target, chunk.positions[k], atol=1e-12)
    return Command(
        position=target,
        quat_xyzw=chunk.quat_xyzw[k],
        euler=chunk.euler[k],
        gripper=float(chunk.gripper[k]),
        clamped=clamped,
        step=k,
    ), ""


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
