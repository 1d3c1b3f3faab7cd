"""A time-interpolated transform tree (/tf + /tf_static) without ROS: numpy and scipy only.

One `TfBuffer` serves streaming (a node feeding /tf and /tf_static as they arrive, statics at
any time) and batch use (a bag read whole). Conventions, as tf2 has them:

* an edge is `parent -> child` and holds T_parent_child: (4, 4) float64, metres, mapping
  child coordinates into the parent frame (a TransformStamped's header.frame_id is the parent,
  its child_frame_id the child); quaternions are (x, y, z, w);
* a frame has at most one parent: adding an edge with a new parent replaces the old edge;
* a static edge holds one transform valid at every time; a dynamic edge holds samples sorted
  by stamp (seconds, float), arriving in any order; an equal stamp replaces its sample;
  samples older than the edge's newest minus `cache_s` are dropped (and ignored on arrival);
* the newest add() decides an edge's kind: a static transform replaces a dynamic history and
  a dynamic sample replaces a static transform;
* `lookup(target, source, t)` is T_target_source at time t (tf2's lookup_transform(target,
  source, t)): each dynamic edge on the path through the frames' common ancestor is
  interpolated at t (translation linear, rotation slerp along the shorter arc).

`add_tf_message` feeds a buffer from a tf2_msgs/TFMessage of rclpy or of rosbags (duck-typed
on the attribute names both share), so callers convert nothing and the core imports no ROS.
"""

from __future__ import annotations

import difflib
import math
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core.geometry import invert_pose, pose_matrix

# tf2's rule (BufferCore::setTransform, QUATERNION_NORMALIZATION_TOLERANCE = 10e-3): a
# quaternion whose squared norm differs from 1 by more than this is refused, any other is
# normalised, so a transform tf2 (and rviz) accept is accepted here too
QUAT_NORM2_TOLERANCE = 10e-3
# lookup error categories (TfLookupError.category)
UNKNOWN_FRAME = "tf_unknown_frame"
NOT_CONNECTED = "tf_not_connected"
EXTRAPOLATION = "tf_extrapolation"


class TfError(ValueError):
    """A transform given to `TfBuffer.add` is invalid; the message names the frame(s) and the
    problem."""


class TfLookupError(LookupError):
    """A lookup cannot be answered. `category` is one of "tf_unknown_frame",
    "tf_not_connected", "tf_extrapolation"; str() names the target and source frames and what
    the buffer knows (frames, their chains, the offending edge's buffered time span)."""

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category = category
        self.reason = reason


@dataclass
class _Edge:
    """T_parent_child of one child frame: static (`T`) or sorted dynamic samples."""

    parent: str
    static: bool
    T: np.ndarray | None = None  # (4, 4), static edges
    stamps: list[float] = field(default_factory=list)  # ascending, dynamic edges
    trans: list[np.ndarray] = field(default_factory=list)  # (3,) each
    quats: list[np.ndarray] = field(default_factory=list)  # (4,) x, y, z, w each

    def span(self) -> str:
        return (
            f"{len(self.stamps)} sample(s) from t={self.stamps[0]:.6f} to t={self.stamps[-1]:.6f}"
        )


def _clean_frame(frame, role: str, parent, child) -> str:
    if not isinstance(frame, str):
        raise TfError(
            f"transform {parent!r} -> {child!r}: the {role} frame id is "
            f"{type(frame).__name__}, expected a str"
        )
    name = frame.lstrip("/")  # tf2 strips a leading '/'
    if not name:
        raise TfError(
            f"transform {parent!r} -> {child!r}: empty {role} frame id (a frame id needs at "
            "least one character besides a leading '/')"
        )
    return name


def _vector(value, n: int, what: str, parent: str, child: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TfError(
            f"transform {parent!r} -> {child!r}: {what} {value!r} is not {n} numbers"
        ) from exc
    if v.shape != (n,):
        raise TfError(
            f"transform {parent!r} -> {child!r}: {what} has shape {v.shape}, expected ({n},)"
        )
    if not np.all(np.isfinite(v)):
        raise TfError(f"transform {parent!r} -> {child!r}: {what} {v.tolist()} is not finite")
    return v


class TfBuffer:
    """Transform tree with per-edge time histories. Thread-safe (one lock per buffer).

    cache_s: seconds of dynamic samples kept per edge, counted back from that edge's newest
    sample (math.inf keeps everything, e.g. for a bag read whole). Lookups cost O(path length
    * log samples)."""

    def __init__(self, cache_s: float = 10.0):
        if not (isinstance(cache_s, int | float) and cache_s > 0 and not math.isnan(cache_s)):
            raise ValueError(f"cache_s must be a positive number of seconds, got {cache_s!r}")
        self.cache_s = float(cache_s)
        self._edges: dict[str, _Edge] = {}
        self._frames: set[str] = set()  # every frame ever named (a replaced parent stays)
        self._lock = threading.Lock()
        self.ignored_old = 0  # dynamic samples that arrived older than the cache window

    # -- adding ---------------------------------------------------------------------------

    def add(
        self,
        parent: str,
        child: str,
        stamp: float,
        translation,
        quat_xyzw,
        static: bool,
    ) -> None:
        """Add T_parent_child: `translation` (3,) metres, `quat_xyzw` (4,) unit (x, y, z, w),
        `stamp` seconds (ignored for a static edge). Raises TfError naming the frames and the
        problem for: a non-str or empty frame id, parent == child, an edge that would close a
        loop, a non-finite stamp/translation/quaternion, a wrong shape, a quaternion whose
        squared norm differs from 1 by more than QUAT_NORM2_TOLERANCE (it is normalised
        otherwise)."""
        parent = _clean_frame(parent, "parent", parent, child)
        child = _clean_frame(child, "child", parent, child)
        if parent == child:
            raise TfError(f"transform {parent!r} -> {child!r}: a frame cannot be its own parent")
        try:
            t = float(stamp)
        except (TypeError, ValueError) as exc:
            raise TfError(
                f"transform {parent!r} -> {child!r}: stamp {stamp!r} is not a number (seconds)"
            ) from exc
        if not math.isfinite(t):
            raise TfError(f"transform {parent!r} -> {child!r}: stamp {t} is not finite")
        p = _vector(translation, 3, "translation", parent, child)
        q = _vector(quat_xyzw, 4, "quaternion (x, y, z, w)", parent, child)
        norm = float(np.linalg.norm(q))
        if abs(norm * norm - 1.0) > QUAT_NORM2_TOLERANCE:
            raise TfError(
                f"transform {parent!r} -> {child!r}: quaternion (x, y, z, w) {q.tolist()} has "
                f"norm {norm:.6g}; expected a unit quaternion (|norm^2 - 1| <= "
                f"{QUAT_NORM2_TOLERANCE}, as tf2)"
            )
        q = q / norm
        with self._lock:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent:
                self._refuse_loop(parent, child)
                edge = None
            self._frames.update((parent, child))
            if static:
                self._edges[child] = _Edge(parent, True, T=pose_matrix(p, q))
                return
            if edge is None or edge.static:
                edge = self._edges[child] = _Edge(parent, False)
            self._insert(edge, t, p, q)

    def _refuse_loop(self, parent: str, child: str) -> None:
        chain = self._chain(parent)
        if child in chain:
            raise TfError(
                f"transform {parent!r} -> {child!r}: {child!r} is already an ancestor of "
                f"{parent!r} ({' -> '.join(chain)}); this edge would close a loop"
            )

    def _insert(self, edge: _Edge, t: float, p: np.ndarray, q: np.ndarray) -> None:
        s = edge.stamps
        if s and t < s[-1] - self.cache_s:
            self.ignored_old += 1
            return
        if not s or t > s[-1]:
            s.append(t)
            edge.trans.append(p)
            edge.quats.append(q)
        else:
            k = bisect_left(s, t)
            if s[k] == t:
                edge.trans[k], edge.quats[k] = p, q
            else:
                s.insert(k, t)
                edge.trans.insert(k, p)
                edge.quats.insert(k, q)
        cut = bisect_left(s, s[-1] - self.cache_s)
        if cut:
            del s[:cut], edge.trans[:cut], edge.quats[:cut]

    # -- the tree -------------------------------------------------------------------------

    @property
    def frames(self) -> list[str]:
        """Every frame named as a parent or a child, sorted."""
        with self._lock:
            return sorted(self._frames)

    def _chain(self, frame: str) -> list[str]:
        out = [frame]
        while out[-1] in self._edges:
            out.append(self._edges[out[-1]].parent)
        return out

    def _unknown(self, frames: list[str], what: str) -> TfLookupError:
        have = f"frames known: {sorted(self._frames)}" if self._frames else "no transforms added"
        close = [
            c for f in frames for c in difflib.get_close_matches(f, self._frames, n=1, cutoff=0.7)
        ]
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        return TfLookupError(UNKNOWN_FRAME, f"{what}: unknown frame(s) {frames}{hint}; {have}")

    def clear_dynamic(self) -> None:
        """Forget every dynamic sample, keep the static edges (what tf2's listener does when
        the clock jumps back: /tf_static is latched and not sent again)."""
        with self._lock:
            for child in [c for c, e in self._edges.items() if not e.static]:
                del self._edges[child]

    def parent_of(self, frame: str) -> str | None:
        """The parent frame of `frame`, None for a root. TfLookupError if `frame` is unknown."""
        frame = frame.lstrip("/")
        with self._lock:
            if frame not in self._frames:
                raise self._unknown([frame], f"parent of {frame!r}")
            edge = self._edges.get(frame)
            return edge.parent if edge else None

    def chain(self, frame: str) -> list[str]:
        """[frame, its parent, ..., the root]. TfLookupError if `frame` is unknown."""
        frame = frame.lstrip("/")
        with self._lock:
            if frame not in self._frames:
                raise self._unknown([frame], f"chain of {frame!r}")
            return self._chain(frame)

    def _path(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """Children whose edges lead from source, and from target, up to the common ancestor."""
        what = f"transform {target!r} <- {source!r}"
        unknown = [f for f in dict.fromkeys((target, source)) if f not in self._frames]
        if unknown:
            raise self._unknown(unknown, what)
        up_t, up_s = self._chain(target), self._chain(source)
        if up_t[-1] != up_s[-1]:
            raise TfLookupError(
                NOT_CONNECTED,
                f"{what}: the frames are in different trees, {' -> '.join(up_t)} and "
                f"{' -> '.join(up_s)} (roots {up_t[-1]!r} and {up_s[-1]!r}); "
                f"frames known: {sorted(self._frames)}",
            )
        in_t = set(up_t)
        k = next(i for i, f in enumerate(up_s) if f in in_t)
        return up_s[:k], up_t[: up_t.index(up_s[k])]

    # -- lookups --------------------------------------------------------------------------

    def _bracket(self, child: str, t: float, tolerance: float, what: str):
        """(i0, i1, a): the samples of a dynamic edge around t and the weight of i1."""
        edge = self._edges[child]
        s = edge.stamps
        if t < s[0] - tolerance or t > s[-1] + tolerance:
            side = (
                f"{s[0] - t:.6f} s before the oldest"
                if t < s[0]
                else f"{t - s[-1]:.6f} s after the newest"
            )
            raise TfLookupError(
                EXTRAPOLATION,
                f"{what} at t={t:.6f}: edge {edge.parent!r} -> {child!r} has {edge.span()}; "
                f"the requested time is {side} sample (tolerance {tolerance} s)",
            )
        k = bisect_right(s, t)
        if k == 0 or k == len(s) or s[k - 1] == t:
            i = 0 if k == 0 else k - 1
            return i, i, 0.0
        return k - 1, k, (t - s[k - 1]) / (s[k] - s[k - 1])

    def _edges_at(self, children: list[str], t: float, tolerance: float, what: str):
        """(n, 4, 4) T_parent_child of each child's edge at t; the dynamic ones interpolated
        together (one vectorised slerp for a whole arm on /tf, not one per joint)."""
        mats = np.empty((len(children), 4, 4))
        dyn, q0, q1, p0, p1, alpha = [], [], [], [], [], []
        for j, child in enumerate(children):
            edge = self._edges[child]
            if edge.static:
                mats[j] = edge.T
                continue
            i0, i1, a = self._bracket(child, t, tolerance, what)
            dyn.append(j)
            q0.append(edge.quats[i0])
            q1.append(edge.quats[i1])
            p0.append(edge.trans[i0])
            p1.append(edge.trans[i1])
            alpha.append(a)
        if dyn:
            a = np.array(alpha)[:, None]
            r0 = Rotation.from_quat(np.array(q0))
            rel = (r0.inv() * Rotation.from_quat(np.array(q1))).as_rotvec()  # shorter arc
            mats[dyn, :3, :3] = (r0 * Rotation.from_rotvec(rel * a)).as_matrix()
            mats[dyn, :3, 3] = (1.0 - a) * np.array(p0) + a * np.array(p1)
            mats[dyn, 3] = (0.0, 0.0, 0.0, 1.0)
        return mats

    def lookup(self, target: str, source: str, stamp: float, tolerance: float = 0.0) -> np.ndarray:
        """(4, 4) float64 T_target_source at `stamp` (seconds): maps source coordinates into
        the target frame. A stamp outside a dynamic edge's buffered span by at most
        `tolerance` seconds uses that end's sample. target == source gives the identity.
        Raises TfLookupError: "tf_unknown_frame", "tf_not_connected", "tf_extrapolation";
        ValueError for a stamp that is not finite or a tolerance that is not >= 0."""
        target, source = target.lstrip("/"), source.lstrip("/")
        t, tolerance = float(stamp), float(tolerance)
        if not math.isfinite(t) or not tolerance >= 0.0:
            raise ValueError(
                f"transform {target!r} <- {source!r}: stamp {t} must be finite (seconds) and "
                f"tolerance {tolerance} >= 0"
            )
        if target == source:
            return np.eye(4)
        what = f"transform {target!r} <- {source!r}"
        with self._lock:
            from_source, from_target = self._path(target, source)
            mats = self._edges_at([*from_source, *from_target], t, tolerance, what)
        T_anc_source, T_anc_target = np.eye(4), np.eye(4)
        for M in mats[: len(from_source)]:
            T_anc_source = M @ T_anc_source
        for M in mats[len(from_source) :]:
            T_anc_target = M @ T_anc_target
        return invert_pose(T_anc_target) @ T_anc_source

    def newest_stamp(self, target: str, source: str) -> float | None:
        """The latest stamp (seconds) at which lookup(target, source) interpolates without
        extrapolating: the minimum over the path's dynamic edges of their newest sample;
        math.inf when the path is static (or target == source); None when a frame is unknown
        or the frames are not connected."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return math.inf
        with self._lock:
            try:
                from_source, from_target = self._path(target, source)
            except TfLookupError:
                return None
            newest = [
                self._edges[c].stamps[-1]
                for c in (*from_source, *from_target)
                if not self._edges[c].static
            ]
        return min(newest, default=math.inf)

    def can_lookup(self, target: str, source: str, stamp: float, tolerance: float = 0.0) -> bool:
        """Whether lookup(target, source, stamp, tolerance) would succeed."""
        try:
            self.lookup(target, source, stamp, tolerance)
        except TfLookupError:
            return False
        return True


def _stamp_s(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def add_tf_message(buffer: TfBuffer, msg, static: bool) -> int:
    """Add every transform of a tf2_msgs/TFMessage (rclpy's or rosbags'; read by attribute:
    transforms[i].header.frame_id / .stamp.sec / .stamp.nanosec, .child_frame_id,
    .transform.translation.x/y/z, .transform.rotation.x/y/z/w). Returns how many were added.
    The valid transforms are added even when others are refused; then one TfError lists the
    refused ones."""
    refused = []
    added = 0
    for tr in msg.transforms:
        v, r = tr.transform.translation, tr.transform.rotation
        try:
            buffer.add(
                tr.header.frame_id,
                tr.child_frame_id,
                _stamp_s(tr.header),
                (v.x, v.y, v.z),
                (r.x, r.y, r.z, r.w),
                static,
            )
            added += 1
        except TfError as exc:
            refused.append(str(exc))
    if refused:
        topic = "/tf_static" if static else "/tf"
        raise TfError(
            f"{topic} message: {len(refused)} of {len(msg.transforms)} transform(s) refused: "
            + "; ".join(refused)
        )
    return added
