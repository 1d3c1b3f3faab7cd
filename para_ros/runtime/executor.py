"""The executor: what happens between a predicted chunk and the robot, in one place (pure).

The node, the in-process evaluation (`para-eval-sim`) and the LIBERO bridge all execute
chunks the same way, with the setting the model was evaluated with (`PolicySpec.executor`)
unless a parameter overrides it:

* policy side (`Executor.decide`): StallGuard, then `safety.gate` on the chunk's
  `execute_step` (plus StallGuard's advance), and the gripper command being executed (the
  model's gripper input when the contract uses it);
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
from para_ros.core.contract import ExecutorSpec, PolicySpec
from para_ros.runtime.safety import Command, SafetyConfig, StallGuard, gate

# Override values that mean "take it from the model" (node and bridge parameters, CLI flags).
FROM_MODEL = {"execute_step": -1, "max_step_m": 0.0, "stall_patience": -1, "zero_rotation": None}


@dataclass(frozen=True)
class ExecutorSettings:
    """The resolved executor: the model's ExecutorSpec with explicit overrides applied.
    `sources` maps each field to "model" or "parameter"."""

    spec: ExecutorSpec
    sources: dict[str, str]

    def describe(self) -> str:
        return ", ".join(
            f"{k}={getattr(self.spec, k)} ({self.sources[k]})" for k in sorted(self.sources)
        )


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
    ex = ExecutorSpec(**values, controller=spec.executor.controller)
    ex.validate("executor")
    if ex.execute_step >= spec.window.steps:
        raise ValueError(
            f"execute_step {ex.execute_step} is outside the model's chunk of "
            f"T={spec.window.steps} steps"
        )
    return ExecutorSettings(ex, sources)


class Executor:
    """Policy side of the executor: one instance per robot (per episode in simulation)."""

    def __init__(self, safety: SafetyConfig):
        self.safety = safety
        self.guard = StallGuard(safety.stall_patience)
        self.gripper_state: float | None = None  # the command being executed (None: none yet)
        self._last_gripper_command: float | None = None  # StallGuard input
        self.advanced_steps = 0  # frames where StallGuard moved execution further

    def decide(self, chunk: ActionChunk, eef_pos: np.ndarray) -> tuple[Command | None, str]:
        """(command, "") to execute for this chunk at the current EEF position (world,
        metres), or (None, reason) when the gate refuses it."""
        advance = self.guard.observe(eef_pos, self._last_gripper_command)
        self.advanced_steps += advance > 0
        cmd, reason = gate(chunk, eef_pos, self.safety, advance)
        self._last_gripper_command = cmd.gripper if cmd is not None else None
        if cmd is not None:
            self.gripper_state = cmd.gripper  # what the robot executes from now on
        return cmd, reason


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


def safety_config(ex: ExecutorSpec, **gate_params) -> SafetyConfig:
    """The gate's configuration from a resolved executor plus the node's gate parameters
    (workspace_min/max, min_confidence)."""
    return SafetyConfig(
        execute_step=ex.execute_step,
        max_step_m=ex.max_step_m,
        stall_patience=ex.stall_patience,
        **gate_params,
    )
