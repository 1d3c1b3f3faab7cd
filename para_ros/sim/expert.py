"""A scripted waypoint expert for LIBERO pick-and-place tasks (gripper pointing down).

hover over the object's rim -> descend -> close -> lift -> move over the target -> descend ->
open -> retreat. Positions are read from the simulator at the start of each phase, so object
shifts are followed. The grasp point is on the rim, offset from the object's centre along the
fingers' closing direction (world x for LIBERO's start orientation), so the fingers straddle
the bowl wall. The offsets were measured on libero_spatial task 0 (offset 0.04 m along x at
0.03 m above the bowl origin lifted the bowl in 3/3 init states; offsets along y failed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from para_ros.sim.libero_sim import LiberoSim, SimObs


@dataclass(frozen=True)
class ExpertConfig:
    rim_offset: float = 0.04  # metres from the object centre to the grasped wall (+x)
    grasp_height: float = 0.03  # EEF z above the object origin when closing
    hover: float = 0.10  # above the grasp point before descending
    lift: float = 0.18  # carry height above the object's start
    place_height: float = 0.07  # EEF z above the target origin when opening (10/10 PLACE)
    step: float = 0.03  # metres per policy step while moving (teleport-servo waypoints)
    close_steps: int = 6
    open_steps: int = 4


def _line(a: np.ndarray, b: np.ndarray, step: float) -> list[np.ndarray]:
    n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
    return [a + (b - a) * (k + 1) / n for k in range(n)]


def run_expert(
    sim: LiberoSim, cfg: ExpertConfig = ExpertConfig(), render: bool = False, on_step=None
) -> tuple[str, list[SimObs], list[np.ndarray]]:
    """Run one episode from the current reset. Returns (outcome, observations, actions);
    actions are [x y z qx qy qz qw gripper] absolute targets, one per observation after the
    first."""
    obs = sim.observe(render)
    observations, actions = [obs], []
    target_name = sim.env.env.obj_of_interest[1]
    quat = sim.start_quat

    def go(points, grip):
        nonlocal obs
        for p in points:
            if sim.step_count >= sim.cfg.max_steps:
                return
            a = np.concatenate([p, quat, [grip]])
            obs = sim.step_target(p, quat, grip, render)
            actions.append(a)
            observations.append(obs)
            if on_step:
                on_step(obs, a)

    obj = sim.object_pos()
    grasp = obj + [cfg.rim_offset, 0.0, cfg.grasp_height]
    go(_line(obs.eef_pos, grasp + [0, 0, cfg.hover], cfg.step), -1.0)
    go(_line(obs.eef_pos, grasp, cfg.step / 2), -1.0)
    go([grasp] * cfg.close_steps, 1.0)
    up = grasp.copy()
    up[2] = obj[2] + cfg.lift
    go(_line(obs.eef_pos, up, cfg.step), 1.0)
    tgt = sim.object_pos(target_name) + [cfg.rim_offset, 0.0, 0.0]
    over = tgt.copy()
    over[2] = up[2]
    go(_line(obs.eef_pos, over, cfg.step), 1.0)
    place = tgt.copy()
    place[2] = tgt[2] + cfg.place_height
    go(_line(obs.eef_pos, place, cfg.step / 2), 1.0)
    go([place] * cfg.open_steps, -1.0)
    go(_line(obs.eef_pos, place + [0, 0, 0.08], cfg.step), -1.0)
    return sim.final_outcome(), observations, actions


def detour(sim: LiberoSim, rng: np.random.Generator, cfg: ExpertConfig = ExpertConfig()) -> None:
    """Leave the arm where a policy that lost the object would be, before a recovery demo.

    A point drawn along the way from the object to the target (fraction uniform in [0, 1]),
    moved up to 6 cm in the table plane and 3-20 cm above the object, reached with the gripper
    closed on nothing (the failure the default model showed: a grasp that missed, then the
    empty gripper carried towards the plate). The steps are not recorded; `run_expert` from
    there opens the gripper on its way back to the object. Designed here (the seed has no
    recovery data)."""
    obs = sim.observe(False)
    obj = sim.object_pos()
    tgt = sim.object_pos(sim.env.env.obj_of_interest[1])
    point = obj + rng.uniform() * (tgt - obj)
    point[:2] += rng.uniform(-0.06, 0.06, size=2)
    point[2] = obj[2] + rng.uniform(0.03, 0.20)
    for p in _line(obs.eef_pos, point, cfg.step):
        sim.step_target(p, sim.start_quat, 1.0, False)
