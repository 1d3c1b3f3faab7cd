"""What a para-eval-sim run evaluates: its setting cells, its starts (official init states,
never repeated, or fresh layouts from the evaluation seed range, checked against the official
states and the training demos' layouts), before sharding.

Setting overrides are SimConfig fields: camera_theta_deg / camera_phi_deg (degrees),
shift_dx / shift_dy (metres). Starts are "official:<index>" or "fresh:<slot>", the slot
indexing the run's list of fresh layouts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from para_ros.sim.layouts import EVAL_LAYOUT_SEEDS, LayoutError

SETTING_KEYS = ("camera_theta_deg", "camera_phi_deg", "shift_dx", "shift_dy")


def setting_cells(args) -> list[dict]:
    """The setting overrides of the run: one dict per cell (SimConfig fields)."""
    cells: list[dict] = [{}]
    if args.positions_file:
        rows = [
            line.split()
            for line in Path(args.positions_file).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        cells = [{"shift_dx": float(r[0]), "shift_dy": float(r[1])} for r in rows]
    elif args.half:
        from para_ros.sim.demos import settings_grid

        cells = settings_grid("position", args.grid, 0, args.half)
    elif args.theta:
        phis = (
            [360.0 * k / args.azimuths for k in range(args.azimuths)]
            if args.azimuths > 1
            else [args.phi]
        )
        cells = [{"camera_theta_deg": args.theta, "camera_phi_deg": p} for p in phis]
    return cells


def episode_plan(args, n_official: int = 50) -> list[dict]:
    """Every episode of the run (before sharding): its start ("official:<i>" or
    "fresh:<slot>", the slot indexing the run's fresh layouts) and setting overrides.
    Refuses (LayoutError) to run an official init state twice: N counts distinct starts."""
    if args.episodes < 1:
        raise LayoutError(f"--episodes must be >= 1, got {args.episodes}")
    if args.layouts == "fresh":
        starts = [f"fresh:{k}" for k in range(args.episodes)]
    else:
        last = args.first_init + args.episodes - 1
        if args.first_init < 0 or last >= n_official:
            raise LayoutError(
                f"{args.suite} task {args.task} has {n_official} official init states "
                f"(0..{n_official - 1}); --first-init {args.first_init} --episodes "
                f"{args.episodes} would need up to {last} and repeat starts. Use at most "
                f"{max(0, n_official - args.first_init)} episodes, or --layouts fresh for "
                "new layouts"
            )
        starts = [f"official:{args.first_init + k}" for k in range(args.episodes)]
    return [{"start": st, **c} for c in setting_cells(args) for st in starts]


def build_layouts(sim, args) -> tuple[list, dict]:
    """The run's fresh layouts (--episodes of them, seeds from --layout-seed-start upward in
    the evaluation range) and a report: a candidate that coincides with an official init
    state or a training demo's layout (--train-demos; every object within
    --layout-tolerance-mm) is skipped with a warning and the next seed is drawn."""
    from para_ros.sim.layouts import (
        check_seed_range,
        nearest,
        training_layouts,
    )

    official = sim.official_layouts()
    refs = [(lay.key, lay.object_xy) for lay in official]
    train = training_layouts(args.train_demos, official) if args.train_demos else []
    tol = args.layout_tolerance_mm / 1e3
    layouts, rejected = [], []
    check_seed_range(args.layout_seed_start, args.episodes, "eval")
    seeds = iter(range(args.layout_seed_start, EVAL_LAYOUT_SEEDS.stop))
    while len(layouts) < args.episodes:
        seed = next(seeds, None)
        if seed is None:
            raise LayoutError("the evaluation layout seed range is exhausted")
        lay = sim.fresh_layout(seed)
        key, d = nearest(lay.object_xy, refs + train)
        if d < tol:
            rejected.append(
                {"seed": seed, "coincides_with": key, "distance_mm": round(d * 1e3, 2)}
            )
            print(
                f"para-eval-sim: warning: fresh layout seed {seed} coincides with {key} "
                f"({d * 1e3:.1f} mm < {args.layout_tolerance_mm} mm); skipped",
                file=sys.stderr,
            )
            continue
        layouts.append(lay)
    report = {
        "layouts": "fresh",
        "layout_seeds": [lay.index for lay in layouts],
        "rejected_layouts": rejected,
        "tolerance_mm": args.layout_tolerance_mm,
        "checked_against": ["official init states"]
        + ([f"{len(train)} training demos ({', '.join(args.train_demos)})"] if train else []),
        "nearest_official_mm": min(
            (nearest(lay.object_xy, refs)[1] * 1e3 for lay in layouts), default=None
        ),
        "nearest_training_mm": min(
            (nearest(lay.object_xy, train)[1] * 1e3 for lay in layouts), default=None
        )
        if train
        else None,
    }
    return layouts, report


def official_report(sim, args) -> dict:
    """For official init states: whether training demos (--train-demos) started from them."""
    from para_ros.sim.layouts import nearest, training_layouts

    if not args.train_demos:
        return {"layouts": "official", "training_checked": False}
    official = sim.official_layouts()
    train = training_layouts(args.train_demos, official)
    idx = range(args.first_init, args.first_init + args.episodes)
    tol = args.layout_tolerance_mm / 1e3
    seen = [i for i in idx if nearest(official[i].object_xy, train)[1] < tol]
    return {
        "layouts": "official",
        "training_checked": True,
        "seen_in_training": seen,
        "tolerance_mm": args.layout_tolerance_mm,
    }
