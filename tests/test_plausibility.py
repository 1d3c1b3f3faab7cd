"""The plausibility checks of the core (para_ros.core.plausibility), the rectifier
(runtime.rectify, checked against cv2.undistortPoints) and the compressed-image decode: each
refusal names the field, the value and what was expected."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from para_ros.core import plausibility as pl
from para_ros.core.geometry import invert_pose, pose_matrix
from para_ros.core.image import ImageFormatError, decode_compressed
from para_ros.core.rectify import Calibration, Rectifier
from tests.ros_helpers.policy_fixture import EEF_POS, K

W = H = 64


def test_stamps_in_the_future_or_older_than_the_last_frame_are_refused():
    assert pl.check_stamp(100.0, 100.05, None, 0.1) is None
    bad = pl.check_stamp(110.0, 100.0, None, 0.1)
    assert bad.category == "future_stamp" and "10.000 s ahead" in bad.reason
    bad = pl.check_stamp(99.0, 100.0, 99.5, 0.1)
    assert bad.category == "out_of_order" and "0.500 s older" in bad.reason
    assert pl.check_stamp(99.5, 100.0, 99.5, 0.1) is None  # the same frame sent again
    assert pl.check_stamp(0.0, 100.0, None, 0.1).category == "stamp_invalid"
    assert pl.check_stamp(5e-9, 100.0, 99.0, 0.1).category == "stamp_invalid"  # sec=0, ns=5


def test_intrinsics_are_named_when_invalid():
    assert pl.check_intrinsics(K, W, H) is None
    bad = pl.check_intrinsics(np.zeros((3, 3)), W, H)
    assert bad.category == "intrinsics_invalid" and "fx=0, fy=0" in bad.reason
    assert "uncalibrated" in bad.reason
    K2 = K.copy()
    K2[0, 2] = 80.0
    assert (
        "principal point (80, 32) px is outside the 64x64 image"
        in pl.check_intrinsics(K2, W, H).reason
    )
    K3 = K.copy()
    K3[1, 1] = np.nan
    assert "not a finite 3x3" in pl.check_intrinsics(K3, W, H).reason


def test_intrinsics_with_skew_the_projection_would_ignore_are_refused():
    # the error of ignoring skew s at the image edge is |s| (H / 2) / fy px, at most 0.5
    fy = K[1, 1]
    limit = pl.MAX_SKEW_ERROR_PX * fy / (H / 2)
    for s in (0.9 * limit, -0.9 * limit, 1e-9):
        Ks = K.copy()
        Ks[0, 1] = s
        assert pl.check_intrinsics(Ks, W, H) is None, s
    for s in (1.1 * limit, -25.0):
        Ks = K.copy()
        Ks[0, 1] = s
        bad = pl.check_intrinsics(Ks, W, H)
        assert bad.category == "intrinsics_invalid" and "skew K[0, 1]" in bad.reason
        assert f"{abs(s) * (H / 2) / fy:.2f} px" in bad.reason


def test_distortion_models_and_sizes():
    d = [-0.42, 0.21, 0.001, -0.002, -0.06]  # the plumb_bob case
    assert pl.needs_rectification("plumb_bob", d)
    assert not pl.needs_rectification("plumb_bob", [0.0] * 5)
    assert not pl.needs_rectification("", [])
    assert pl.check_distortion("plumb_bob", d) is None
    bad = pl.check_distortion("plumb_bob", d[:4])
    assert bad.category == "distortion_invalid" and "needs 5 coefficients, got 4" in bad.reason
    bad = pl.check_distortion("fov", [0.1])
    assert bad.category == "distortion_unsupported" and "'fov'" in bad.reason


def test_poses_need_a_named_expected_frame_and_a_unit_quaternion():
    q = np.array([0.0, 0.0, 0.0, 1.0])
    assert pl.check_pose(EEF_POS, q, "world", "world", "EEF pose") is None
    bad = pl.check_pose(EEF_POS, q, "", "world", "EEF pose")
    assert bad.category == "eef_pose_frame" and "empty header.frame_id" in bad.reason
    bad = pl.check_pose(EEF_POS, q, "base_link", "world", "EEF pose")
    assert "in frame 'base_link', expected 'world'" in bad.reason
    bad = pl.check_pose(EEF_POS, [0.0, 0.0, 0.0, 0.9], "world", "world", "camera pose")
    assert bad.category == "camera_pose_invalid" and "norm 0.9000" in bad.reason
    bad = pl.check_pose([np.nan, 0, 0], q, "world", "world", "EEF pose")
    assert bad.category == "eef_pose_invalid" and "NaN/inf" in bad.reason


def _look_at(eye, target) -> np.ndarray:
    """world <- camera (OpenCV optical axes: z forward, y down) looking from eye at target."""
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = eye
    return T


def test_start_keypoint_names_the_likely_calibration_mistake():
    """A robot-base world (origin at the arm's base, table top at z = 0.1 m): a camera 1 m
    from the table looking at it, the EEF above the table. (Near-symmetric set-ups, e.g. a
    camera straight above the world origin, can see the EEF with an inverted pose too: the
    check then cannot tell, and says nothing.)"""
    from scipy.spatial.transform import Rotation

    Kc = np.array([[110.0, 0, 64.0], [0, 110.0, 64.0], [0, 0, 1]])
    T = _look_at(np.array([1.2, 0.8, 0.7]), [0.5, 0.0, 0.1])
    eef = np.array([0.5, 0.1, 0.2])
    assert pl.check_start_keypoint(eef, Kc, T, 128, 128) is None
    bad = pl.check_start_keypoint(eef, Kc, invert_pose(T), 128, 128)
    assert bad is not None and "camera <- world (inverted)" in bad.reason, bad
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    bad = pl.check_start_keypoint(eef, Kc, pose_matrix(T[:3, 3], np.roll(q, 1)), 128, 128)
    assert bad is not None and "(w, x, y, z) instead of (x, y, z, w)" in bad.reason, bad
    body = T.copy()
    body[:3, :3] = T[:3, :3] @ pl._R_BODY_OPTICAL.T  # an optical pose read as a body pose
    bad = pl.check_start_keypoint(eef, Kc, body, 128, 128)
    assert bad is not None and "body frame (x forward, REP-103)" in bad.reason, bad
    behind = 2 * T[:3, 3] - eef  # mirrored through the camera centre: behind it
    bad = pl.check_start_keypoint(behind, Kc, T, 128, 128)
    assert bad.category == "start_behind_camera" and "is behind the camera (depth -" in bad.reason
    huge = pl.check_start_keypoint(np.array([0.0, 0.0, -1e200]), Kc, T, 128, 128)
    assert "the EEF [0, 0, -1e+200] m" in huge.reason and len(huge.reason) < 400
    # the start-up check of a camera_pose parameter uses the same diagnosis
    bad = pl.check_camera_sees(eef, Kc, invert_pose(T), 128, 128, "the workspace centre")
    assert bad.category == "camera_pose_implausible" and "inverted" in bad.reason


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_rectified_image_puts_points_where_undistort_points_says(model):
    """Dots drawn at the distorted projections of known points land, after rectification,
    at cv2.undistortPoints' (or the fisheye variant's) positions of the same points."""
    w, h = 320, 240
    Kc = np.array([[200.0, 0, 160.0], [0, 200.0, 120.0], [0, 0, 1]])
    d = {
        "plumb_bob": [-0.42, 0.21, 0.001, -0.002, -0.06],
        "rational_polynomial": [-0.3, 0.1, 0.001, -0.001, 0.0, 0.05, 0.01, 0.0],
        "equidistant": [-0.05, 0.01, 0.0, 0.0],
    }[model]
    P = np.hstack([Kc, np.zeros((3, 1))])
    cal = Calibration(w, h, model, tuple(d), tuple(Kc.ravel()), (0.0,) * 9, tuple(P.ravel()))
    pts = np.array([[40.0, 30.0], [280.0, 40.0], [60.0, 200.0], [250.0, 190.0], [160.0, 120.0]])
    # ideal pixels -> distorted pixels (where the raw image has them)
    rays = cv2.undistortPoints(pts[:, None], Kc, None)  # normalised
    obj = np.concatenate([rays[:, 0], np.ones((len(pts), 1))], axis=1)[:, None]
    if model == "equidistant":
        raw, _ = cv2.fisheye.projectPoints(obj, np.zeros(3), np.zeros(3), Kc, np.array(d))
    else:
        raw, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), Kc, np.array(d))
    raw = raw[:, 0]
    img = np.zeros((h, w, 3), np.uint8)
    for u, v in raw:
        cv2.circle(img, (round(u * 16), round(v * 16)), 40, (255, 255, 255), -1, cv2.LINE_AA, 4)
    rect = Rectifier(cal).rectify(img)
    if model == "equidistant":
        expect = cv2.fisheye.undistortPoints(raw[:, None], Kc, np.array(d), P=Kc)[:, 0]
    else:
        expect = cv2.undistortPoints(raw[:, None], Kc, np.array(d), P=Kc)[:, 0]
    # the round trip itself (undistortPoints iterates: ~0.1 px at strongly distorted corners)
    np.testing.assert_allclose(expect, pts, atol=0.3)
    gray = rect[:, :, 0].astype(np.float64)
    for u, v in expect:
        y0, x0 = int(v) - 6, int(u) - 6
        win = gray[max(y0, 0) : y0 + 13, max(x0, 0) : x0 + 13]
        ys, xs = np.mgrid[max(y0, 0) : y0 + 13, max(x0, 0) : x0 + 13]
        cu, cv_ = (xs * win).sum() / win.sum(), (ys * win).sum() / win.sum()
        # pixel centres are at integer + 0.5 in the contract's continuous pixels, OpenCV's at
        # integers: compare in OpenCV's convention
        assert abs(cu - u) < 0.5 and abs(cv_ - v) < 0.5, (model, (u, v), (cu, cv_))


def test_compressed_images_decode_to_rgb_and_bad_formats_are_named():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    _, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = decode_compressed(png.tobytes(), "rgb8; png compressed bgr8")
    np.testing.assert_array_equal(out, rgb)
    _, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = decode_compressed(jpg.tobytes(), "jpeg")
    assert out.shape == (8, 8, 3) and abs(int(out[..., 0].mean()) - 200) < 4
    with pytest.raises(ImageFormatError, match=r"raw encoding '32FC1'"):
        decode_compressed(png.tobytes(), "32FC1; png compressed ")
    with pytest.raises(ImageFormatError, match=r"unsupported compressed format 'h264'"):
        decode_compressed(png.tobytes(), "h264")
    with pytest.raises(ImageFormatError, match=r"do not decode as jpeg"):
        decode_compressed(b"garbage", "bgr8; jpeg compressed bgr8")
    with pytest.raises(ImageFormatError, match=r"empty compressed image"):
        decode_compressed(b"", "bgr8; jpeg compressed bgr8")


def test_episodes_refuse_invalid_intrinsics_and_a_camera_that_does_not_see_the_eef():
    """The readers' one episode type runs the same checks on recorded data."""
    import dataclasses

    from para_ros.data.episode import Episode, EpisodeError
    from para_ros.data.synthetic import make_episodes

    ep = make_episodes(1, seed=0, n_frames=10)[0]
    fields = {f.name: getattr(ep, f.name) for f in dataclasses.fields(Episode)}
    with pytest.raises(EpisodeError, match=r"frame 0: K has focal lengths fx=0, fy=0"):
        Episode(**{**fields, "K": np.zeros((3, 3))})
    below = np.array(ep.T_world_cam, dtype=np.float64)
    below[2, 3] -= 2.0  # the camera 2 m lower: under the table, the EEF behind it
    with pytest.raises(EpisodeError, match=r"out of the camera's view on 10 of 10 frames"):
        Episode(**{**fields, "T_world_cam": below})
