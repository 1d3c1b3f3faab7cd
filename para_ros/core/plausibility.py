"""Plausibility checks of every input before inference (pure: numpy/scipy, no ROS).

One place for what a camera driver, a calibration or an arm can get wrong; the policy node
runs them on every frame, `para-replay-eval` on every recorded frame. Each check returns None
when the input is plausible, else an `Implausible(category, reason)`: the category is the
skip counter's key in /diagnostics, the reason names the field, the value and what was
expected.

Conventions as in `contract`: pixels (u, v) x right / y down over [0, W) x [0, H); K at the
image's resolution; `T_world_cam` maps the OpenCV optical frame (z forward) to the world;
quaternions (x, y, z, w); seconds and metres.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core import geometry

# |q| may differ from 1 by this much (float32 round trips and hand-typed calibrations).
QUATERNION_TOLERANCE = 1e-3
# Distortion models the node can rectify (sensor_msgs/distortion_models.hpp names).
RECTIFIABLE_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
# check_eef_height: the EEF may be this far outside the model's height range (metres, or the
# range's span when larger). The range holds the training targets' heights, and an arm
# starts or passes above them; a world frame at another height (a base on the floor under a
# table-top training world) is off by far more.
EEF_HEIGHT_MARGIN_M = 0.3


class Implausible(NamedTuple):
    category: str
    reason: str


def check_stamp(
    stamp: float, now: float, last_processed: float | None, future_tolerance: float
) -> Implausible | None:
    """An image stamp (seconds, the node's clock) may be at most `future_tolerance` s ahead
    of `now`, and never older than the last processed frame. An equal stamp passes: it is the
    same frame sent again (the lock-step bridge re-sends an unanswered observation), and it
    is answered again."""
    if not np.isfinite(stamp) or stamp < 1e-6:  # ROS time zero means "unset"
        return Implausible("stamp_invalid", f"image stamp {stamp} s is not a time")
    ahead = stamp - now
    if ahead > future_tolerance:
        return Implausible(
            "future_stamp",
            f"image stamp is {ahead:.3f} s ahead of the node's clock (at most "
            f"future_tolerance {future_tolerance} s): the sender's clock is not synchronised "
            "with this node's (or use_sim_time differs)",
        )
    if last_processed is not None and stamp < last_processed:
        return Implausible(
            "out_of_order",
            f"image stamp is {last_processed - stamp:.3f} s older than the last processed "
            "frame: only newer frames are acted on",
        )
    return None


# Largest pixel error the projection may make by ignoring K's skew K[0, 1] (every projection
# and lift in para_ros.core.geometry assumes none): the error at the image's top or bottom
# edge is |skew| * (height / 2) / fy pixels.
MAX_SKEW_ERROR_PX = 0.5


def check_intrinsics(K: np.ndarray, width: int, height: int) -> Implausible | None:
    """K (3x3, pixels at `width` x `height`): finite, fx, fy > 0, an upper-triangular pinhole
    with the principal point inside the image, and a skew K[0, 1] small enough to ignore
    (under MAX_SKEW_ERROR_PX at the image edge)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        return Implausible("intrinsics_invalid", f"K is not a finite 3x3 matrix: {K.tolist()}")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (fx > 0 and fy > 0):
        return Implausible(
            "intrinsics_invalid",
            f"K has focal lengths fx={fx:g}, fy={fy:g} px; expected both > 0 (an all-zero K "
            "means the camera is uncalibrated)",
        )
    if not (0 <= cx < width and 0 <= cy < height):
        return Implausible(
            "intrinsics_invalid",
            f"K's principal point ({cx:g}, {cy:g}) px is outside the {width}x{height} image",
        )
    if K[2, 2] != 1 or K[1, 0] or K[2, 0] or K[2, 1]:
        return Implausible(
            "intrinsics_invalid", f"K is not a pinhole matrix [[fx 0 cx] [0 fy cy] [0 0 1]]: {K}"
        )
    skew_px = abs(K[0, 1]) * (height / 2) / fy
    if skew_px > MAX_SKEW_ERROR_PX:
        return Implausible(
            "intrinsics_invalid",
            f"K has skew K[0, 1] = {K[0, 1]:g}, which moves the image edge by {skew_px:.2f} px; "
            f"projections here assume none (at most {MAX_SKEW_ERROR_PX} px): calibrate with "
            "zero skew (OpenCV's default)",
        )
    return None


def needs_rectification(model: str, d) -> bool:
    """True when a CameraInfo's distortion is not zero (an empty `d` means none)."""
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    return bool(d.size and np.any(d != 0))


def check_distortion(model: str, d) -> Implausible | None:
    """A non-zero `d` must be finite, of a model that can be rectified, with its length."""
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    if not needs_rectification(model, d):
        return None
    if not np.isfinite(d).all():
        return Implausible("distortion_invalid", f"distortion d has NaN/inf: {d.tolist()}")
    sizes = {"plumb_bob": (5,), "rational_polynomial": (8,), "equidistant": (4,)}
    if model not in sizes:
        return Implausible(
            "distortion_unsupported",
            f"distortion model {model!r} with d={d.tolist()} cannot be rectified; expected "
            f"one of {list(RECTIFIABLE_MODELS)} (or publish rectified images with d all zero)",
        )
    if d.size not in sizes[model]:
        return Implausible(
            "distortion_invalid",
            f"{model} needs {sizes[model][0]} coefficients, got {d.size}: {d.tolist()}",
        )
    return None


def check_pose(
    position, quat_xyzw, frame_id: str, expected_frame: str, what: str
) -> Implausible | None:
    """A pose message: `frame_id` present and equal to `expected_frame`, position finite,
    quaternion (x, y, z, w) finite and unit within QUATERNION_TOLERANCE."""
    key = what.lower().replace(" ", "_")
    if not frame_id:
        return Implausible(
            f"{key}_frame",
            f"{what} has an empty header.frame_id; expected {expected_frame!r} (an unnamed "
            "frame is never assumed to be the world)",
        )
    if frame_id != expected_frame:
        return Implausible(
            f"{key}_frame", f"{what} is in frame {frame_id!r}, expected {expected_frame!r}"
        )
    p, q = np.asarray(position, np.float64), np.asarray(quat_xyzw, np.float64)
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        return Implausible(f"{key}_invalid", f"{what} has NaN/inf: p={p.tolist()} q={q.tolist()}")
    n = float(np.linalg.norm(q))
    if abs(n - 1.0) > QUATERNION_TOLERANCE:
        return Implausible(
            f"{key}_invalid",
            f"{what} quaternion (x y z w) {q.tolist()} has norm {n:.4f}; expected 1 "
            f"(within {QUATERNION_TOLERANCE})",
        )
    return None


# camera body frame (REP-103: x forward, y left, z up) -> optical frame (z forward, x right)
_R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _fmt(v) -> str:
    """A vector for a message: 4 significant digits, whatever its magnitude."""
    return "[" + ", ".join(f"{float(x):.4g}" for x in np.asarray(v).reshape(-1)) + "]"


def _visible(point, K, T_world_cam, width, height) -> bool:
    uv, z = geometry.project(np.asarray(point, np.float64)[None], K, T_world_cam)
    return bool(z[0] > 0 and geometry.in_image(uv, (height, width))[0])


def _likely_mistake(point, K, T_world_cam, width, height) -> str:
    """Which common calibration mistake would make `point` visible, if one does."""
    T = np.asarray(T_world_cam, np.float64)
    q = Rotation.from_matrix(T[:3, :3]).as_quat()  # x y z w
    guesses = {
        "the quaternion was given as (w, x, y, z) instead of (x, y, z, w)": geometry.pose_matrix(
            T[:3, 3], np.roll(q, -1)
        ),
        "the pose is camera <- world (inverted) instead of world <- camera": geometry.invert_pose(
            T
        ),
    }
    body = T.copy()
    body[:3, :3] = T[:3, :3] @ _R_BODY_OPTICAL
    guesses[
        "the pose is of the camera body frame (x forward, REP-103), not the optical frame "
        "(z forward)"
    ] = body
    fits = [what for what, T_alt in guesses.items() if _visible(point, K, T_alt, width, height)]
    if fits:
        return "; it would be visible if " + ", or if ".join(fits)
    return "; check the camera pose, its quaternion order (x y z w) and the frames"


def check_start_keypoint(
    eef_pos, K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int
) -> Implausible | None:
    """The current EEF (world, metres) must project in front of the camera and inside the
    image: the model's start keypoint is that pixel. If it does not, the camera pose (or its
    quaternion order, or the frame) is wrong, and the reason says which mistake fits."""
    uv, z = geometry.project(np.asarray(eef_pos, np.float64)[None], K, T_world_cam)
    if not z[0] > 0:
        return Implausible(
            "start_behind_camera",
            f"the EEF {_fmt(eef_pos)} m is behind the camera (depth {z[0]:.4g} m)"
            + _likely_mistake(eef_pos, K, T_world_cam, width, height),
        )
    if not geometry.in_image(uv, (height, width))[0]:
        return Implausible(
            "start_off_image",
            f"the EEF {_fmt(eef_pos)} m projects to pixel "
            f"({uv[0, 0]:.1f}, {uv[0, 1]:.1f}), outside the {width}x{height} image"
            + _likely_mistake(eef_pos, K, T_world_cam, width, height),
        )
    return None


def check_camera_sees(
    point, K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int, what: str
) -> Implausible | None:
    """Start-up check of a camera pose: `point` (e.g. where the training camera's optical
    axis meets the workspace) must be in front of the camera and inside its image."""
    if _visible(point, K, T_world_cam, width, height):
        return None
    return Implausible(
        "camera_pose_implausible",
        f"{what} {_fmt(point)} m is not in view of the camera pose"
        + _likely_mistake(point, K, T_world_cam, width, height),
    )


def check_eef_height(
    z: float, height_min: float, height_max: float, world_frame: str
) -> Implausible | None:
    """The current EEF height (world z, metres) against the model's height range (its
    training targets' heights, PolicySpec `height`). A policy can only place targets in that
    range, and an arm moves within reach of it: an EEF far outside means the world frame is
    not the training one (e.g. a robot whose `world` is its base on the floor, 0.9 m under a
    table-top training world). Allowed: the range widened on each side by EEF_HEIGHT_MARGIN_M
    or by its span, whichever is larger."""
    span = float(height_max - height_min)
    margin = max(EEF_HEIGHT_MARGIN_M, span)
    lo, hi = height_min - margin, height_max + margin
    if lo <= z <= hi:
        return None
    side = "below" if z < lo else "above"
    off = (height_min - z) if z < lo else (z - height_max)
    return Implausible(
        "eef_height",
        f"the EEF is at z = {z:.3f} m in {world_frame!r}, {off:.3f} m {side} the model's "
        f"height range [{height_min:.3f}, {height_max:.3f}] m (allowed {lo:.3f} .. {hi:.3f}): "
        f"the world frame {world_frame!r} is probably not the one the model was trained in "
        "(its origin sits at another height); publish a world frame that matches the training "
        "data's (e.g. a static transform) or retrain with this robot's frame",
    )
