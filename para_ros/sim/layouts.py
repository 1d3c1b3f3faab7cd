"""Initial layouts of a LIBERO task and the seeds of its episodes (no simulator import).

A layout is where an episode starts: an official init state (LIBERO's file, by index) or a
fresh one drawn from the task's own placement sampler with a layout seed. Layout seeds come
from two disjoint ranges, so training demos and evaluation never share one by construction:

    TRAIN_LAYOUT_SEEDS  [0, 1_000_000)           para-make-demos --layouts fresh
    EVAL_LAYOUT_SEEDS   [1_000_000, 2_000_000)   para-eval-sim --layouts fresh

Beyond the seeds, two layouts coincide when every movable object lies within `tol` (metres,
in the table plane) of its place in the other; `overlaps` finds such pairs.

The episode seed (numpy's global RNG and Python's `random`, set right before the
environment's reset, which places the fixtures from it) is `episode_seed(base, key)`: a hash
of the run's base seed and the layout key only, so an episode's outcome depends on (model,
layout, setting, seed) and not on which episodes ran before it; the settings of one layout
share its seed (a viewpoint cell differs from the default camera only by the camera).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

TRAIN_LAYOUT_SEEDS = range(0, 1_000_000)
EVAL_LAYOUT_SEEDS = range(1_000_000, 2_000_000)
COINCIDE_TOL_M = 0.005  # metres: closer than this (every object) is the same layout


class LayoutError(ValueError):
    """A layout seed outside its range, or an evaluation layout that is a training one."""


@dataclass(frozen=True)
class Layout:
    """One initial scene. `state`: flattened MuJoCo state (sim.get_state().flatten());
    `fixtures`: {body name: (pos (3,) m, quat (4,) wxyz)} of fixed bodies (cabinet, stove),
    which the state does not hold (None: placed by the episode's seeded reset);
    `object_xy`: {object: (x, y)} world metres right after the state is set."""

    source: str  # "official" | "fresh"
    index: int  # official: init-state index; fresh: layout seed
    state: np.ndarray = field(repr=False)
    object_xy: dict = field(default_factory=dict, repr=False)
    fixtures: dict | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.index}"

    def record(self) -> dict:
        """JSON-ready description (no state): source, index, object positions (m)."""
        return {
            "source": self.source,
            "index": self.index,
            "object_xy": {k: [float(v[0]), float(v[1])] for k, v in self.object_xy.items()},
        }


def episode_seed(base: int, layout_key: str) -> int:
    """The seed of an episode starting from `layout_key` in a run with base seed `base`
    (an integer in [0, 2**32), stable across processes and Python versions)."""
    h = hashlib.sha256(f"{int(base)}|{layout_key}".encode()).digest()
    return int.from_bytes(h[:4], "little")


def check_seed_range(start: int, count: int, purpose: str) -> range:
    """The layout seeds [start, start + count) after checking they lie in the range of
    `purpose` ("train" or "eval"); LayoutError otherwise."""
    allowed = TRAIN_LAYOUT_SEEDS if purpose == "train" else EVAL_LAYOUT_SEEDS
    seeds = range(start, start + count)
    if count < 0 or start < allowed.start or seeds.stop > allowed.stop:
        raise LayoutError(
            f"{purpose} layout seeds must lie in [{allowed.start}, {allowed.stop}) "
            f"(training and evaluation seeds are disjoint ranges); got "
            f"[{seeds.start}, {seeds.stop})"
        )
    return seeds


def layout_distance(a: dict, b: dict) -> float:
    """Largest table-plane displacement (metres) of an object between two layouts'
    `object_xy`; inf when they share no object."""
    common = sorted(set(a) & set(b))
    if not common:
        return float("inf")
    pa = np.array([a[k] for k in common], dtype=np.float64)
    pb = np.array([b[k] for k in common], dtype=np.float64)
    return float(np.linalg.norm(pa - pb, axis=1).max())


def nearest(xy: dict, references: list[tuple[str, dict]]) -> tuple[str, float]:
    """(key, distance in metres) of the reference layout closest to `xy`; ("", inf) if none."""
    best = ("", float("inf"))
    for key, ref in references:
        d = layout_distance(xy, ref)
        if d < best[1]:
            best = (key, d)
    return best


def overlaps(
    layouts: list[Layout], references: list[tuple[str, dict]], tol: float = COINCIDE_TOL_M
) -> list[dict]:
    """Each layout that coincides with a reference (every object within `tol` m):
    [{"layout", "coincides_with", "distance_mm"}]."""
    out = []
    for lay in layouts:
        key, d = nearest(lay.object_xy, references)
        if d < tol:
            out.append(
                {"layout": lay.key, "coincides_with": key, "distance_mm": round(d * 1e3, 2)}
            )
    return out


def training_layouts(demo_files: list[str], official: list[Layout]) -> list[tuple[str, dict]]:
    """(key, object_xy) of every demo's start in para-make-demos HDF5 files: the recorded
    layout, or (older files) the official init state it names."""
    import json

    import h5py

    out = []
    for path in demo_files:
        with h5py.File(path, "r") as f:
            for name, g in f["data"].items():
                if not name.startswith("demo_"):
                    continue
                meta = json.loads(g.attrs.get("meta", "{}"))
                lay = meta.get("layout")
                if lay:
                    out.append(
                        (f"{path}:{name} ({lay['source']}:{lay['index']})", lay["object_xy"])
                    )
                elif "init_state" in meta:
                    i = int(meta["init_state"])
                    out.append((f"{path}:{name} (official:{i})", official[i].object_xy))
    return out
