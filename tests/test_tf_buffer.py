"""para_ros.core.tf_buffer: the time-interpolated /tf + /tf_static tree shared by the policy
node, the bag reader and timed replay. Interpolation is checked against an independent
computation (pytransform3d's sin-formula slerp and pq -> matrix, np.interp for translation),
the field bag against numbers of the reader it replaced. Pure: no rclpy, no torch (rclpy's
tf2_msgs message class is used only as an input)."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from pytransform3d.rotations import quaternion_slerp
from pytransform3d.transformations import transform_from_pq
from scipy.spatial.transform import Rotation

from para_ros.core.tf_buffer import (
    EXTRAPOLATION,
    NOT_CONNECTED,
    UNKNOWN_FRAME,
    TfBuffer,
    TfError,
    TfLookupError,
    add_tf_message,
)
from tests.ros_helpers.env import REPO

FIELD_BAG = REPO.parent / "shared" / "field-data" / "rosbag_realsense_tf" / "ep_0" / "ep_0.mcap"
T0 = 1_760_000_000.0


def _pq_matrix(p, q_xyzw) -> np.ndarray:
    """Independent of the buffer's own pose code: pytransform3d, (w, x, y, z) order."""
    return transform_from_pq(np.r_[p, q_xyzw[3], q_xyzw[:3]])


def _quat(axis, deg) -> np.ndarray:
    return Rotation.from_rotvec(np.radians(deg) * np.asarray(axis, float)).as_quat()


# -- a Panda + RealSense tree ---------------------------------------------------------------

LINK0 = (np.array([-0.66, 0.02, 0.912]), _quat([0, 0, 1], 7.0))
TCP = (np.array([0.0, 0.0, 0.1034]), _quat([0, 0, 1], -45.0))
CAM_LINK = (np.array([0.66, -0.1, 1.61]), _quat([0.2, 1, 0.1], 40.0))
OPTICAL = (np.array([0.0, 0.015, 0.0]), np.array([-0.5, 0.5, -0.5, 0.5]))
HAND_T = T0 + 0.01 * np.arange(6)  # 100 Hz
rng = np.random.default_rng(7)
HAND_P = np.array([0.3, 0.0, 0.5]) + 0.05 * rng.standard_normal((6, 3))
# 20-40 degrees between samples: a wrong interpolation shows far above 1e-9
AXES = rng.standard_normal((6, 3))
HAND_Q = np.array([_quat(a / np.linalg.norm(a), 30.0 * i) for i, a in enumerate(AXES)])
HAND_Q[::2] *= -1.0  # the same rotations with flipped signs: slerp must take the shorter arc


def _panda_tree(buf: TfBuffer, statics_first: bool = True) -> TfBuffer:
    statics = [
        ("world", "panda_link0", LINK0),
        ("panda_hand", "panda_hand_tcp", TCP),
        ("world", "camera_link", CAM_LINK),
        ("camera_link", "camera_color_optical_frame", OPTICAL),
    ]
    dynamics = [
        ("panda_link0", "panda_hand", t, p, q)
        for t, p, q in zip(HAND_T, HAND_P, HAND_Q, strict=True)
    ]
    add_static = [lambda s=s: buf.add(s[0], s[1], T0, *s[2], static=True) for s in statics]
    add_dyn = [lambda d=d: buf.add(*d, static=False) for d in dynamics]
    for f in (add_static + add_dyn) if statics_first else (add_dyn + add_static):
        f()
    return buf


def _reference_world_tcp(t: float) -> np.ndarray:
    k = min(int(np.searchsorted(HAND_T, t, side="right")) - 1, len(HAND_T) - 2)
    a = (t - HAND_T[k]) / (HAND_T[k + 1] - HAND_T[k])
    p = np.array([np.interp(t, HAND_T, HAND_P[:, i]) for i in range(3)])
    wxyz = [np.r_[q[3], q[:3]] for q in HAND_Q[k : k + 2]]
    q = quaternion_slerp(wxyz[0], wxyz[1], a, shortest_path=True)
    T_link0_hand = transform_from_pq(np.r_[p, q])
    return _pq_matrix(*LINK0) @ T_link0_hand @ _pq_matrix(*TCP)


def test_core_module_is_pure():
    code = (
        "import sys, para_ros.core.tf_buffer\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rclpy', 'torch', 'pytransform3d', 'rosbags'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_interpolation_against_independent_slerp():
    buf = _panda_tree(TfBuffer())
    world_optical = _pq_matrix(*CAM_LINK) @ _pq_matrix(*OPTICAL)
    stamps = [HAND_T[0], HAND_T[0] + 0.0025, HAND_T[2] + 0.007, HAND_T[3], HAND_T[4] + 0.0099]
    for t in stamps:
        want = _reference_world_tcp(t)
        got = buf.lookup("world", "panda_hand_tcp", t)
        assert got.dtype == np.float64 and got.shape == (4, 4)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=f"t={t}")
        np.testing.assert_allclose(
            buf.lookup("panda_hand_tcp", "world", t), np.linalg.inv(want), rtol=0, atol=1e-9
        )
        # between the two branches under world (arm and camera)
        tcp_in_optical = np.linalg.inv(world_optical) @ want
        np.testing.assert_allclose(
            buf.lookup("camera_color_optical_frame", "panda_hand_tcp", t),
            tcp_in_optical,
            rtol=0,
            atol=1e-9,
        )
        np.testing.assert_allclose(
            buf.lookup("panda_hand_tcp", "camera_color_optical_frame", t),
            np.linalg.inv(tcp_in_optical),
            rtol=0,
            atol=1e-9,
        )
    # a sample stamp gives that sample; a point maps source -> target
    T = buf.lookup("panda_link0", "panda_hand", HAND_T[3])
    np.testing.assert_allclose(T, _pq_matrix(HAND_P[3], HAND_Q[3]), rtol=0, atol=1e-12)
    p_tcp = np.array([0.01, -0.02, 0.03, 1.0])
    np.testing.assert_allclose(
        buf.lookup("world", "panda_hand_tcp", HAND_T[1]) @ p_tcp,
        _reference_world_tcp(HAND_T[1]) @ p_tcp,
        atol=1e-12,
    )
    np.testing.assert_array_equal(buf.lookup("world", "world", 0.0), np.eye(4))
    assert buf.frames == sorted(
        ["world", "panda_link0", "panda_hand", "panda_hand_tcp", "camera_link"]
        + ["camera_color_optical_frame"]
    )
    assert buf.chain("panda_hand_tcp") == ["panda_hand_tcp", "panda_hand", "panda_link0", "world"]
    assert buf.parent_of("camera_color_optical_frame") == "camera_link"
    assert buf.parent_of("world") is None


def _reference_edge(stamps, P, Q, t) -> np.ndarray:
    """Independent interpolation of one dynamic edge: np.interp and sin-formula slerp."""
    k = min(int(np.searchsorted(stamps, t, side="right")) - 1, len(stamps) - 2)
    a = (t - stamps[k]) / (stamps[k + 1] - stamps[k])
    p = [np.interp(t, stamps, P[:, i]) for i in range(3)]
    wxyz = [np.r_[q[3], q[:3]] for q in Q[k : k + 2]]
    return transform_from_pq(np.r_[p, quaternion_slerp(wxyz[0], wxyz[1], a, shortest_path=True)])


def test_several_dynamic_edges_on_both_branches():
    """world -> a (100 Hz) -> b (static) -> c (30 Hz) -> d (50 Hz) and world -> e (30 Hz)
    -> f (static), random rotations between samples: every dynamic edge interpolated at the
    same stamp, each from its own samples."""
    gen = np.random.default_rng(11)
    buf = TfBuffer()
    edges = {}
    for parent, child, hz in (("world", "a", 100), ("b", "c", 30), ("c", "d", 50)):
        stamps = T0 + np.arange(0, 0.2, 1 / hz) + gen.uniform(0, 0.003)
        P = gen.standard_normal((len(stamps), 3))
        Q = Rotation.random(len(stamps), rng=gen).as_quat()
        edges[child] = (stamps, P, Q)
        for t, p, q in zip(stamps, P, Q, strict=True):
            buf.add(parent, child, t, p, q, static=False)
    buf.add("a", "b", T0, *LINK0, static=True)
    buf.add("e", "f", T0, *OPTICAL, static=True)
    stamps = T0 + np.arange(0, 0.2, 1 / 30) + 0.001  # e after its child f
    n = len(stamps)
    edges["e"] = (stamps, gen.standard_normal((n, 3)), Rotation.random(n, rng=gen).as_quat())
    for t, p, q in zip(*edges["e"], strict=True):
        buf.add("world", "e", t, p, q, static=False)
    for t in T0 + np.array([0.0035, 0.0713, 0.1502]):
        E = {c: _reference_edge(*edges[c], t) for c in edges}
        world_d = E["a"] @ _pq_matrix(*LINK0) @ E["c"] @ E["d"]
        world_f = E["e"] @ _pq_matrix(*OPTICAL)
        want = np.linalg.inv(world_f) @ world_d
        np.testing.assert_allclose(buf.lookup("f", "d", t), want, rtol=0, atol=1e-9)
        np.testing.assert_allclose(buf.lookup("d", "f", t), np.linalg.inv(want), atol=1e-9)
    assert buf.newest_stamp("f", "d") == min(s[-1] for s, _, _ in edges.values())


def test_newest_stamp_and_can_lookup():
    buf = _panda_tree(TfBuffer())
    assert buf.newest_stamp("world", "panda_hand_tcp") == HAND_T[-1]
    assert buf.newest_stamp("camera_color_optical_frame", "panda_hand_tcp") == HAND_T[-1]
    assert buf.newest_stamp("world", "camera_color_optical_frame") == math.inf  # all static
    assert buf.newest_stamp("world", "world") == math.inf
    assert buf.newest_stamp("world", "nowhere") is None
    # the minimum over the path's dynamic edges
    buf.add("camera_link", "lens", HAND_T[2], [0, 0, 0.01], [0, 0, 0, 1], static=False)
    buf.add("camera_link", "lens", HAND_T[3], [0, 0, 0.02], [0, 0, 0, 1], static=False)
    assert buf.newest_stamp("lens", "panda_hand_tcp") == HAND_T[3]
    assert buf.can_lookup("lens", "panda_hand_tcp", HAND_T[3])
    assert not buf.can_lookup("lens", "panda_hand_tcp", HAND_T[4])
    assert buf.can_lookup("lens", "panda_hand_tcp", HAND_T[4], tolerance=0.0101)
    assert not buf.can_lookup("lens", "nowhere", HAND_T[3])


def test_statics_added_after_dynamics_are_picked_up():
    buf = TfBuffer()
    for t, p, q in zip(HAND_T, HAND_P, HAND_Q, strict=True):
        buf.add("panda_link0", "panda_hand", t, p, q, static=False)
    with pytest.raises(TfLookupError) as err:
        buf.lookup("world", "panda_hand", HAND_T[1])
    assert err.value.category == UNKNOWN_FRAME
    assert buf.newest_stamp("world", "panda_hand") is None
    _panda_tree(buf, statics_first=False)  # the statics now arrive (late /tf_static)
    t = HAND_T[1] + 0.004
    np.testing.assert_allclose(
        buf.lookup("world", "panda_hand_tcp", t), _reference_world_tcp(t), atol=1e-9
    )
    assert buf.newest_stamp("world", "panda_hand_tcp") == HAND_T[-1]


def test_out_of_order_samples_and_equal_stamps():
    order = [3, 0, 5, 1, 4, 2]
    shuffled = TfBuffer()
    for i in order:
        shuffled.add("panda_link0", "panda_hand", HAND_T[i], HAND_P[i], HAND_Q[i], static=False)
    ordered = _panda_tree(TfBuffer())
    for t in (HAND_T[0] + 0.003, HAND_T[2], HAND_T[4] + 0.0061):
        np.testing.assert_allclose(
            shuffled.lookup("panda_link0", "panda_hand", t),
            ordered.lookup("panda_link0", "panda_hand", t),
            rtol=0,
            atol=1e-12,
        )
    # an equal stamp replaces its sample
    shuffled.add("panda_link0", "panda_hand", HAND_T[2], [1.0, 2.0, 3.0], [0, 0, 0, 1], False)
    T = shuffled.lookup("panda_link0", "panda_hand", HAND_T[2])
    np.testing.assert_allclose(T, _pq_matrix([1.0, 2.0, 3.0], [0, 0, 0, 1]), atol=1e-15)
    with pytest.raises(TfLookupError, match=r"has 6 sample\(s\) from"):
        shuffled.lookup("panda_link0", "panda_hand", HAND_T[-1] + 1.0)


def test_cache_trimming():
    buf = TfBuffer(cache_s=1.0)
    stamps = T0 + 0.01 * np.arange(301)  # 3 s at 100 Hz
    for t in stamps:
        buf.add("odom", "base", t, [t - T0, 0, 0], [0, 0, 0, 1], static=False)
    newest = stamps[-1]
    # kept: samples no older than newest - 1 s (101 of them)
    with pytest.raises(TfLookupError) as err:
        buf.lookup("odom", "base", newest - 1.5)
    assert err.value.category == EXTRAPOLATION
    assert "has 101 sample(s) from t=1760000002.000000 to t=1760000003.000000" in str(err.value)
    assert "0.500000 s before the oldest sample" in str(err.value)
    T = buf.lookup("odom", "base", newest - 0.995)
    assert T[0, 3] == pytest.approx(2.005, abs=1e-6)
    # a late sample older than the window is ignored, one inside it is inserted
    buf.add("odom", "base", newest - 1.2, [9.0, 0, 0], [0, 0, 0, 1], static=False)
    assert buf.ignored_old == 1
    buf.add("odom", "base", newest - 0.505, [9.0, 0, 0], [0, 0, 0, 1], static=False)
    assert buf.lookup("odom", "base", newest - 0.505)[0, 3] == 9.0
    with pytest.raises(TfLookupError, match=r"has 102 sample\(s\)"):
        buf.lookup("odom", "base", newest + 1.0)
    with pytest.raises(ValueError, match="cache_s must be a positive number"):
        TfBuffer(cache_s=0.0)


def test_unknown_frame_error_names_frames():
    buf = _panda_tree(TfBuffer())
    with pytest.raises(TfLookupError) as err:
        buf.lookup("world", "tool0", HAND_T[1])
    assert err.value.category == UNKNOWN_FRAME
    msg = str(err.value)
    assert msg.startswith("transform 'world' <- 'tool0': unknown frame(s) ['tool0']; frames known")
    assert "'panda_hand_tcp'" in msg and "'camera_link'" in msg
    with pytest.raises(TfLookupError, match=r"unknown frame\(s\) \['a', 'b'\]; no transforms"):
        TfBuffer().lookup("a", "b", 0.0)
    with pytest.raises(TfLookupError, match=r"chain of 'tool0': unknown frame"):
        buf.chain("tool0")


def test_disconnected_trees_error_names_both_chains():
    buf = _panda_tree(TfBuffer())
    buf.add("map", "odom", T0, [1, 0, 0], [0, 0, 0, 1], static=True)
    with pytest.raises(TfLookupError) as err:
        buf.lookup("odom", "panda_hand_tcp", HAND_T[1])
    assert err.value.category == NOT_CONNECTED
    assert str(err.value).startswith(
        "transform 'odom' <- 'panda_hand_tcp': the frames are in different trees, odom -> map "
        "and panda_hand_tcp -> panda_hand -> panda_link0 -> world (roots 'map' and 'world')"
    )


def test_extrapolation_beyond_tolerance_and_within():
    buf = _panda_tree(TfBuffer())
    newest = HAND_T[-1]
    with pytest.raises(TfLookupError) as err:
        buf.lookup("world", "panda_hand_tcp", newest + 0.03, tolerance=0.02)
    assert err.value.category == EXTRAPOLATION
    assert str(err.value) == (
        "transform 'world' <- 'panda_hand_tcp' at t=1760000000.080000: edge 'panda_link0' -> "
        "'panda_hand' has 6 sample(s) from t=1760000000.000000 to t=1760000000.050000; the "
        "requested time is 0.030000 s after the newest sample (tolerance 0.02 s)"
    )
    with pytest.raises(TfLookupError, match=r"0.010000 s before the oldest sample \(tol"):
        buf.lookup("camera_color_optical_frame", "panda_hand_tcp", HAND_T[0] - 0.01)
    # within tolerance: the nearest end sample
    within = buf.lookup("world", "panda_hand_tcp", newest + 0.015, tolerance=0.02)
    np.testing.assert_allclose(within, _reference_world_tcp(newest), atol=1e-9)
    first = buf.lookup("world", "panda_hand_tcp", HAND_T[0] - 0.02, tolerance=0.02)
    np.testing.assert_allclose(first, _reference_world_tcp(HAND_T[0]), atol=1e-9)
    for stamp, tol in ((math.nan, 0.0), (HAND_T[1], -0.01), (HAND_T[1], math.nan)):
        with pytest.raises(ValueError, match=r"'world' <- 'panda_hand': stamp .* must be fini"):
            buf.lookup("world", "panda_hand", stamp, tolerance=tol)
    # static edges have no time
    far = buf.lookup("world", "camera_color_optical_frame", 0.0)
    np.testing.assert_allclose(far, _pq_matrix(*CAM_LINK) @ _pq_matrix(*OPTICAL), atol=1e-12)


def test_bad_inputs_name_frame_and_problem():
    buf = TfBuffer()
    ok = dict(stamp=T0, translation=[0, 0, 0], quat_xyzw=[0, 0, 0, 1], static=False)
    cases = [
        (dict(parent="", child="tcp"), r"'' -> 'tcp': empty parent frame id"),
        (dict(parent="world", child="/"), r"'world' -> '/': empty child frame id"),
        (dict(parent="hand", child="hand"), r"'hand' -> 'hand': a frame cannot be its own"),
        (dict(parent="w", child=None), r"'w' -> None: the child frame id is NoneType, expected"),
        (
            dict(parent="w", child="tcp", translation=[0, math.nan, 0]),
            r"'w' -> 'tcp': translation \[0.0, nan, 0.0\] is not finite",
        ),
        (
            dict(parent="w", child="tcp", translation=[0, 0]),
            r"'w' -> 'tcp': translation has shape \(2,\), expected \(3,\)",
        ),
        (
            dict(parent="w", child="tcp", quat_xyzw=[0, 0, 0, 1.01]),
            r"'w' -> 'tcp': quaternion \(x, y, z, w\) \[0.0, 0.0, 0.0, 1.01\] has norm 1.01; "
            r"expected a unit quaternion \(\|norm\^2 - 1\| <= 0.01, as tf2\)",
        ),
        (
            dict(parent="w", child="tcp", quat_xyzw=[0, 0, 0, math.nan]),
            r"'w' -> 'tcp': quaternion \(x, y, z, w\) \[0.0, 0.0, 0.0, nan\] is not finite",
        ),
        (dict(parent="w", child="tcp", stamp=math.nan), r"'w' -> 'tcp': stamp nan is not fin"),
        (dict(parent="w", child="tcp", stamp="now"), r"'w' -> 'tcp': stamp 'now' is not a num"),
    ]
    for change, message in cases:
        with pytest.raises(TfError, match=r"^transform " + message):
            buf.add(**{**ok, **change})
    assert buf.frames == []
    # a quaternion tf2 accepts (|norm^2 - 1| = 0.006) is normalised; a leading '/' is
    # stripped as tf2 does
    buf.add("/world", "/tcp", T0, [0, 0, 1], [0, 0, 0, 1.003], static=True)
    assert buf.frames == ["tcp", "world"]
    np.testing.assert_allclose(buf.lookup("/world", "tcp", 0.0)[:3, :3], np.eye(3), atol=1e-15)
    # an edge that would close a loop
    buf.add("tcp", "finger", T0, [0, 0, 0], [0, 0, 0, 1], static=True)
    with pytest.raises(
        TfError,
        match=r"'finger' -> 'world': 'world' is already an ancestor of 'finger' "
        r"\(finger -> tcp -> world\); this edge would close a loop",
    ):
        buf.add("finger", "world", T0, [0, 0, 0], [0, 0, 0, 1], static=True)


def test_new_parent_and_new_kind_replace_the_edge():
    buf = _panda_tree(TfBuffer())
    buf.add("world", "panda_hand", T0, [0, 0, 2.0], [0, 0, 0, 1], static=True)  # reparented
    assert buf.chain("panda_hand_tcp") == ["panda_hand_tcp", "panda_hand", "world"]
    assert buf.newest_stamp("world", "panda_hand_tcp") == math.inf  # the history went
    np.testing.assert_allclose(
        buf.lookup("world", "panda_hand_tcp", 5.0),
        _pq_matrix([0, 0, 2.0], [0, 0, 0, 1]) @ _pq_matrix(*TCP),
        atol=1e-12,
    )
    assert "panda_link0" in buf.frames  # a frame once seen stays known (as a root here)
    # a dynamic sample replaces a static edge
    buf.add("world", "panda_hand", T0 + 1, [0, 0, 3.0], [0, 0, 0, 1], static=False)
    assert buf.newest_stamp("world", "panda_hand_tcp") == T0 + 1


# -- message feeding ------------------------------------------------------------------------


def _ros_tf_message(cls_tf, cls_ts, stamp_sec, stamp_ns):
    """A TFMessage of rclpy's generated classes."""
    msg = cls_tf()
    for parent, child, (p, q) in (("world", "panda_link0", LINK0), ("panda_link0", "hand", TCP)):
        tr = cls_ts()
        tr.header.frame_id, tr.child_frame_id = parent, child
        tr.header.stamp.sec, tr.header.stamp.nanosec = stamp_sec, stamp_ns
        tr.transform.translation.x, tr.transform.translation.y, tr.transform.translation.z = p
        r = tr.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in q)
        msg.transforms.append(tr)
    return msg


def test_add_tf_message_from_rclpy_and_rosbags_messages():
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    from para_ros.data.rosbag_io import _typestore

    buf = TfBuffer()
    assert (
        add_tf_message(buf, _ros_tf_message(TFMessage, TransformStamped, 1_760_000_000, 5), False)
        == 2
    )
    M = _typestore().types
    V3, Q = M["geometry_msgs/msg/Vector3"], M["geometry_msgs/msg/Quaternion"]
    header = M["std_msgs/msg/Header"](
        stamp=M["builtin_interfaces/msg/Time"](sec=1_760_000_000, nanosec=500_000_005),
        frame_id="panda_link0",
    )
    p, q = TCP
    bag_msg = M["tf2_msgs/msg/TFMessage"](
        transforms=[
            M["geometry_msgs/msg/TransformStamped"](
                header=header,
                child_frame_id="hand",
                transform=M["geometry_msgs/msg/Transform"](
                    translation=V3(x=p[0] + 0.1, y=p[1], z=p[2]),
                    rotation=Q(x=q[0], y=q[1], z=q[2], w=q[3]),
                ),
            )
        ]
    )
    assert add_tf_message(buf, bag_msg, False) == 1
    assert buf.chain("hand") == ["hand", "panda_link0", "world"]
    t_mid = T0 + 0.25 + 5e-9
    T = buf.lookup("panda_link0", "hand", t_mid)
    np.testing.assert_allclose(T[:3, 3], p + [0.05, 0, 0], atol=1e-6)  # halfway in time
    assert buf.newest_stamp("panda_link0", "hand") == pytest.approx(T0 + 0.5, abs=1e-6)
    # world -> panda_link0 came as one dynamic sample: the path's newest is its stamp
    assert buf.newest_stamp("world", "hand") == pytest.approx(T0, abs=1e-6)


def test_add_tf_message_adds_the_valid_and_names_the_refused():
    good = SimpleNamespace(
        header=SimpleNamespace(frame_id="world", stamp=SimpleNamespace(sec=1, nanosec=0)),
        child_frame_id="cam",
        transform=SimpleNamespace(
            translation=SimpleNamespace(x=1.0, y=0.0, z=0.0),
            rotation=SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0),
        ),
    )
    bad = SimpleNamespace(
        header=good.header,
        child_frame_id="tcp",
        transform=SimpleNamespace(
            translation=good.transform.translation,
            rotation=SimpleNamespace(x=0.0, y=0.0, z=0.0, w=0.0),
        ),
    )
    buf = TfBuffer()
    with pytest.raises(
        TfError,
        match=r"^/tf_static message: 1 of 2 transform\(s\) refused: transform 'world' -> "
        r"'tcp': quaternion .* has norm 0",
    ):
        add_tf_message(buf, SimpleNamespace(transforms=[bad, good]), static=True)
    assert buf.frames == ["cam", "world"]
    assert buf.lookup("world", "cam", 123.0)[0, 3] == 1.0


# -- bags -----------------------------------------------------------------------------------

# world <- panda_hand_tcp and world <- camera_color_optical_frame at image stamps, as the
# reader this buffer replaced (pytransform3d's TemporalTransformManager) gave them on the field
# bag: (image index, position m, quaternion x y z w)
OLD_READER_EEF = [
    (0, [-0.20973881042038156, -0.014361542607350593, 1.1721610705198222],
     [0.9989714733034393, -0.03668078459072402, -0.026566714982645304, -0.002173757759216923]),
    (1, [-0.20915355320949636, -0.04698664836617261, 1.1483691035831254],
     [0.8892384192621158, -0.45692456326328224, -0.010153245794609541, -0.01928441844357011]),
    (17, [-0.023782680030942305, 0.20221395189364083, 0.943603050813506],
     [-0.7060063247474021, 0.7076510323207801, 0.01975857907647351, -0.01986666617424846]),
    (33, [0.09305532036247877, 0.205231796715951, 1.0776938741015027],
     [-0.706081010424274, 0.7075041995747778, 0.02090991176569467, -0.02121767876653879]),
    (48, [0.09426525694212617, 0.20525183679839526, 1.051068511169565],
     [-0.7064077792729099, 0.7071832710591839, 0.020895529314938953, -0.02105344084460652]),
]  # fmt: skip
OLD_READER_T_WORLD_CAM = [
    [-7.268184500609761e-08, 0.6282664504107426, -0.7779982437565531, 0.6586131746834771],
    [0.999999999999986, -7.268184500609761e-08, -1.5211526597534747e-07, 0.0],
    [-1.5211526597534747e-07, -0.7779982437565529, -0.6282664504107284, 1.6103500240372424],
    [0.0, 0.0, 0.0, 1.0],
]
FIELD_OPTIONS = dict(
    image="/camera/camera/color/image_raw/compressed",
    camera_info="/camera/camera/color/camera_info",
)


def _read_field_bag():
    from rosbags.highlevel import AnyReader

    from para_ros.data.rosbag_io import _typestore

    out: dict[str, list] = {"/tf": [], "/tf_static": [], FIELD_OPTIONS["image"]: []}
    with AnyReader([FIELD_BAG], default_typestore=_typestore()) as reader:
        conns = [c for c in reader.connections if c.topic in out]
        for conn, _, raw in reader.messages(connections=conns):
            out[conn.topic].append(reader.deserialize(raw, conn.msgtype))
    return out


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@pytest.mark.skipif(not FIELD_BAG.is_file(), reason=f"{FIELD_BAG} not present")
def test_field_bag_matches_the_replaced_reader():
    from para_ros.data.rosbag_io import BagOptions, BagTopics, read_bag

    msgs = _read_field_bag()
    buf = TfBuffer(cache_s=math.inf)
    for m in msgs["/tf_static"]:
        add_tf_message(buf, m, static=True)
    for m in msgs["/tf"]:
        add_tf_message(buf, m, static=False)
    images = [_stamp(m.header) for m in msgs[FIELD_OPTIONS["image"]]]
    tf_t = np.array([_stamp(m.transforms[0].header) for m in msgs["/tf"]])
    tf_p = np.array(
        [[getattr(m.transforms[0].transform.translation, a) for a in "xyz"] for m in msgs["/tf"]]
    )
    T_world_link0 = buf.lookup("world", "panda_link0", 0.0)
    ep, report = read_bag(
        FIELD_BAG,
        BagTopics(**FIELD_OPTIONS),
        options=BagOptions(eef_frame="panda_hand_tcp", gripper_from="fingers"),
    )
    assert report.images == report.paired == 49 and report.skipped_no_tf == 0
    for i, pos, quat in OLD_READER_EEF:
        T = buf.lookup("world", "panda_hand_tcp", images[i], tolerance=0.02)
        # the reader now gives this buffer's poses
        np.testing.assert_allclose(ep.eef_pos[i], T[:3, 3], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            Rotation.from_quat(ep.eef_quat[i]).as_matrix(), T[:3, :3], rtol=0, atol=1e-12
        )
        # rotation: slerp, as the replaced reader's screw interpolation
        assert abs(np.dot(Rotation.from_matrix(T[:3, :3]).as_quat(), quat)) == pytest.approx(
            1.0, abs=1e-12
        )
        # translation: linear in time (tf2), where screw-linear interpolation couples it with
        # the rotation: equal where the hand turns < 2 degrees between /tf samples, up to
        # 2.2 mm at the start, where it turns 51 and 38 degrees in 50 ms
        want_p = (
            T_world_link0[:3, :3] @ [np.interp(images[i], tf_t, tf_p[:, a]) for a in range(3)]
            + T_world_link0[:3, 3]
        )
        np.testing.assert_allclose(T[:3, 3], want_p, rtol=0, atol=1e-12)
        atol = 2.2e-3 if i in (0, 1) else 2e-5
        np.testing.assert_allclose(T[:3, 3], pos, rtol=0, atol=atol, err_msg=f"image {i}")
    # the camera: /tf_static's chain world -> camera_link -> camera_color_optical_frame
    static = {tr.child_frame_id: tr for tr in msgs["/tf_static"][0].transforms}
    chain = np.eye(4)
    for child in ("camera_link", "camera_color_optical_frame"):
        tr = static[child].transform
        chain = chain @ _pq_matrix(
            [tr.translation.x, tr.translation.y, tr.translation.z],
            [tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w],
        )
    cam = buf.lookup("world", "camera_color_optical_frame", images[5])
    np.testing.assert_allclose(cam, chain, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cam, OLD_READER_T_WORLD_CAM, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ep.T_world_cam, cam, rtol=0, atol=1e-12)


def test_bag_images_outside_the_tf_span_are_counted(tmp_path):
    """Images stamped 30 ms after their /tf sample: the last one is 30 ms past the newest
    sample, skipped at tolerance 20 ms and counted; the others are interpolated."""
    from para_ros.data.readers import load_episodes
    from para_ros.data.source import DataSource
    from para_ros.data.synthetic import make_episodes
    from tests.format_writers import write_realsense_bag

    ep = make_episodes(1, seed=3, image_hw=(64, 64), n_frames=12)[0]
    bag = write_realsense_bag(tmp_path / "late", ep, image_lag_s=0.03)
    source = DataSource(
        image_topic="/camera/color/image_raw/compressed",
        camera_info_topic="/camera/color/camera_info",
        eef_frame="panda_hand_tcp",
        gripper_from="fingers",
    )
    reports: list = []
    back = load_episodes(bag, source, reports=reports)[0]
    r = reports[0]
    assert (r.images, r.paired, r.skipped_no_tf) == (12, 11, 1)
    frac = 0.03 / (ep.time[1] - ep.time[0])
    want = ep.eef_pos[:-1] + frac * np.diff(ep.eef_pos, axis=0)
    np.testing.assert_allclose(back.eef_pos, want, atol=1e-6)


def test_clear_dynamic_keeps_statics_and_unknown_frames_get_the_close_name():
    buf = TfBuffer()
    buf.add("world", "panda_link0", 0.0, [0, 0, 0.9], [0, 0, 0, 1], static=True)
    for t in (1.0, 2.0):
        buf.add("panda_link0", "panda_hand_tcp", t, [t, 0, 0], [0, 0, 0, 1], static=False)
    assert buf.lookup("world", "panda_hand_tcp", 1.5)[0, 3] == pytest.approx(1.5)
    with pytest.raises(
        TfLookupError, match=r"\['panda_tcp'\] \(did you mean 'panda_hand_tcp'\?\)"
    ):
        buf.lookup("world", "panda_tcp", 1.5)
    buf.clear_dynamic()  # a clock that jumped back: samples of the old run never mix in
    buf.add("panda_link0", "panda_hand_tcp", 0.5, [7.0, 0, 0], [0, 0, 0, 1], static=False)
    assert buf.lookup("world", "panda_hand_tcp", 0.5)[:3, 3] == pytest.approx([7.0, 0, 0.9])
    with pytest.raises(TfLookupError) as err:
        buf.lookup("world", "panda_hand_tcp", 1.5, tolerance=0.1)
    assert err.value.category == "tf_extrapolation"
