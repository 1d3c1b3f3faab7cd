"""The executor: what happens between a predicted chunk and the robot, in one place (pure).

The node, the in-process evaluation (`para-eval-sim`) and the LIBERO bridge all execute
chunks the same way, with the setting the model was evaluated with (`PolicySpec.executor`)
unless a parameter overrides it:

* policy side (`Executor.decide`): StallGuard, then `safety.gate` on the chunk's
  `execute_step` (plus StallGuard's advance) with, under a streaming controller, the time
  since the previous published command, and the gripper command being executed (the model's
  gripper input when the contract uses it);
* robot side (`Follower.target`): execute the command, or hold the current EEF with the last
  gripper command when none was published.

`resolve_executor` merges the model's ExecutorSpec with explicit overrides and says where each
value came from (the node reports it in /diagnostics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from para_ros.core.action_codec import ActionChunk
from para_ros.core.contract import ExecutorSpec, PolicySpec, default_max_speed_mps
from para_ros.runtime.safety import Command, SafetyConfig, StallGuard, gate

# Override values that mean "take it from the model" (node and bridge parameters, CLI flags).
FROM_MODEL = {
    "execute_step": -1,
    "max_step_m": 0.0,
    "stall_patience": -1,
    "zero_rotation": None,
    "controller": "",
    "max_speed_mps": 0.0,
    "max_angular_speed_rps": 0.0,
}


@dataclass(frozen=True)
class ExecutorSettings:
    """The resolved executor: the model's ExecutorSpec with explicit overrides applied.
    `sources` maps each field to "model" or "parameter"; `period_s` is the model's
    window.dt (seconds between frames the model was made for: a streaming controller's
    nominal period)."""

    spec: ExecutorSpec
    sources: dict[str, str]
    period_s: float | None = None

    def describe(self) -> str:
        return ", ".join(
            f"{k}={getattr(self.spec, k)} ({self.sources[k]})" for k in sorted(self.sources)
        )

    def speed_limit_text(self) -> str:
        """One line: the bounds a command gets, with where each came from, e.g.
        "streaming: <= 0.25 m/s and 1 rad/s (model), <= 0.05 m per command (model)"."""
        ex, src = self.spec, self.sources
        ctl = ex.controller + (" (parameter)" if src.get("controller") == "parameter" else "")
        step = f"<= {ex.max_step_m:.4g} m per command ({src.get('max_step_m', 'model')})"
        if ex.controller != "streaming":
            return f"{ctl}: {step}; no speed bound (each target is reached before the next frame)"
        v_src = src.get("max_speed_mps", "model")
        w_src = src.get("max_angular_speed_rps", "model")
        v, w = f"{ex.max_speed_mps:.4g} m/s", f"{ex.max_angular_speed_rps:.4g} rad/s"
        speeds = f"{v} and {w} ({v_src})" if v_src == w_src else f"{v} ({v_src}) and {w} ({w_src})"
        return f"{ctl}: <= {speeds}, {step}"


def resolve_executor(spec: PolicySpec, overrides: Mapping[str, object]) -> ExecutorSettings:
    """Apply `overrides` (ExecutorSpec field -> value; a FROM_MODEL value or a missing key
    keeps the model's) to `spec.executor`. Raises ValueError naming a bad value."""
    unknown = sorted(set(overrides) - set(FROM_MODEL))
    if unknown:
        raise ValueError(f"unknown executor setting(s) {unknown}; known {sorted(FROM_MODEL)}")
    values, sources = {}, {}
    for name, sentinel in FROM_MODEL.items():
        v = overrides.get(name, sentinel)
        explicit = v is not None and v != sentinel
        values[name] = v if explicit else getattr(spec.executor, name)
        sources[name] = "parameter" if explicit else "model"
    ex = ExecutorSpec(**values)
    ex.validate("executor")
    if ex.execute_step >= spec.window.steps:
        raise ValueError(
            f"execute_step {ex.execute_step} is outside the model's chunk of "
            f"T={spec.window.steps} steps"
        )
    return ExecutorSettings(ex, sources, spec.window.dt)


class Executor:
    """Policy side of the executor: one instance per robot (per episode in simulation)."""

    def __init__(self, safety: SafetyConfig):
        self.safety = safety
        self.guard = StallGuard(safety.stall_patience)
        self.gripper_state: float | None = None  # the command being executed (None: none yet)
        self._last_gripper_command: float | None = None  # StallGuard input
        self.advanced_steps = 0  # frames where StallGuard moved execution further
        self._last_stamp: float | None = None  # seconds: the previous published command's
        self._last_elapsed: float | None = None  # seconds: the time it was bounded with

    def decide(
        self,
        chunk: ActionChunk,
        eef_pos: np.ndarray,
        stamp_s: float | None = None,
        eef_quat_xyzw: np.ndarray | None = None,
    ) -> tuple[Command | None, str]:
        """(command, "") to execute for this chunk at the current EEF pose, or (None, reason)
        when the gate refuses it.

        eef_pos: (3,) world metres. A streaming controller also uses `stamp_s` (seconds, the
        frame's stamp: a command moves at most max_speed_mps x the time since the previous
        published command; None, or the first command: the model's window.dt) and
        `eef_quat_xyzw` ((4,) x, y, z, w, world; None: rotation not limited). A stamp not
        after the previous command's (the same frame answered again, or a clock that jumped
        back) allows the previous command's bound again: the controller is asked for no more
        than it already was; the next frame's time is counted from this stamp."""
        advance = self.guard.observe(eef_pos, self._last_gripper_command)
        self.advanced_steps += advance > 0
        elapsed = self._elapsed(stamp_s)
        cmd, reason = gate(chunk, eef_pos, self.safety, advance, elapsed, eef_quat_xyzw)
        self._last_gripper_command = cmd.gripper if cmd is not None else None
        if cmd is not None:
            self.gripper_state = cmd.gripper  # what the robot executes from now on
            if self.safety.streaming:
                self._last_elapsed = self.safety.nominal_period_s if elapsed is None else elapsed
                if stamp_s is not None:
                    self._last_stamp = float(stamp_s)
        return cmd, reason

    def _elapsed(self, stamp_s: float | None) -> float | None:
        """Seconds the next command may move for (None: the gate's nominal period)."""
        if not self.safety.streaming or stamp_s is None or self._last_stamp is None:
            return None
        elapsed = float(stamp_s) - self._last_stamp
        return elapsed if elapsed > 0 else self._last_elapsed


class Follower:
    """Robot side of the executor: the target to servo to for each frame."""

    def __init__(self, open_gripper: float):
        self.gripper = float(open_gripper)  # the command being executed (open at the start)
        self.held = 0  # frames without a command (held at the current EEF)

    def target(
        self, command_pos: np.ndarray | None, command_gripper: float | None, eef_pos: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """(position, gripper) to execute: the command, or hold the current EEF position with
        the last gripper command when `command_pos` is None."""
        if command_pos is None:
            self.held += 1
            return np.asarray(eef_pos, dtype=np.float64), self.gripper
        self.gripper = float(command_gripper)
        return np.asarray(command_pos, dtype=np.float64), self.gripper


def safety_config(
    ex: ExecutorSpec | ExecutorSettings, nominal_period_s: float | None = None, **gate_params
) -> SafetyConfig:
    """The gate's configuration from a resolved executor plus the node's gate parameters
    (workspace_min/max, min_confidence).

    nominal_period_s: seconds between frames, the model's window.dt (default: the
    ExecutorSettings' `period_s`); a streaming controller needs it (ValueError without), and
    an ExecutorSpec without max_speed_mps gets max_step_m / nominal_period_s."""
    if isinstance(ex, ExecutorSettings):
        nominal_period_s = nominal_period_s if nominal_period_s is not None else ex.period_s
        ex = ex.spec
    if ex.controller == "streaming" and nominal_period_s is None:
        raise ValueError(
            "the streaming controller bounds a first command by the model's frame period: "
            "pass the ExecutorSettings from resolve_executor, or nominal_period_s (window.dt)"
        )
    speed = ex.max_speed_mps
    if speed is None and nominal_period_s is not None:
        speed = default_max_speed_mps(ex.max_step_m, nominal_period_s)
    return SafetyConfig(
        execute_step=ex.execute_step,
        max_step_m=ex.max_step_m,
        stall_patience=ex.stall_patience,
        controller=ex.controller,
        max_speed_mps=speed,
        max_angular_speed_rps=ex.max_angular_speed_rps,
        nominal_period_s=nominal_period_s,
        **gate_params,
    )
