"""para_libero_bridge mode:=driver: a simulated arm that speaks only what real drivers publish.

One bridge run (module fixture) is observed by an independent rclpy process, as a user's tool
would: it records /joint_states, /tf, /tf_static (subscribed late: transient local),
the compressed camera and its CameraInfo, lists the ROS graph, and, one simulated second into
the episode, commands the arm: a target in another frame, a stale one, then a PoseStamped 5 cm
away streamed until the end. The test process then replays the held first second in its own
LiberoSim + DriverArm (deterministic without commands) and compares poses and images.

Run as a module, this file is that tool:

    python -m tests.sim.test_bridge_driver tool OUT_DIR TIMEOUT_S
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.ros_helpers.env import REPO

pytestmark = pytest.mark.ros

EPISODE_START = 1.0  # simulation clock at episode 0's reset (libero_bridge.SIM_CLOCK_START)
COMMAND_AT = 1.0  # simulated seconds into the episode: the tool starts commanding
MOVE = np.array([0.0, 0.05, 0.0])  # the commanded displacement, metres (world)
MAX_SPEED = 0.1  # m/s: the bridge's setpoint bound in this run
MAX_STEPS = 30  # x 0.1 s (no model: the default executor's period) = 3 simulated seconds
CONTROL_FREQ = 100
IMAGE = 128
BRIDGE_TOPICS = {
    "/joint_states": "sensor_msgs/msg/JointState",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/camera/camera/color/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
    "/camera/camera/color/camera_info": "sensor_msgs/msg/CameraInfo",
    "/clock": "rosgraph_msgs/msg/Clock",
    "/para_libero_bridge/episode_status": "para_ros/msg/EpisodeStatus",
}


# -- the independent tool (its own process; rclpy and numpy only) ---------------------------


def _tf_list(msg) -> list:
    out = []
    for t in msg.transforms:
        tr, q = t.transform.translation, t.transform.rotation
        stamp = t.header.stamp.sec + t.header.stamp.nanosec * 1e-9
        out.append([t.header.frame_id, t.child_frame_id, stamp, [tr.x, tr.y, tr.z],
                    [q.x, q.y, q.z, q.w]])  # fmt: skip
    return out


def _pose_matrix(t, q) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(q).as_matrix()
    T[:3, 3] = t
    return T


def chain_pose(static: list, moving: list, root: str, leaf: str) -> np.ndarray:
    """root <- leaf from transform lists [parent, child, stamp, t, q] (a tree walk)."""
    parent_of = {c: (p, _pose_matrix(t, q)) for p, c, _, t, q in [*static, *moving]}
    T, frame = np.eye(4), leaf
    while frame != root:
        p, T_pc = parent_of[frame]  # KeyError: the tree is not connected
        T, frame = T_pc @ T, p
    return T


def _tool(out: Path, timeout: float) -> int:
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, CompressedImage, JointState
    from tf2_msgs.msg import TFMessage

    from para_ros.msg import EpisodeStatus

    rclpy.init()
    node = rclpy.create_node(
        "user_tool", parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)]
    )
    rec = {"js": [], "tf": [], "tf_static": [], "images": [], "info": None, "status": None}
    rec["tf_before_static_subscription"] = 0
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    now = lambda: node.get_clock().now().nanoseconds * 1e-9  # noqa: E731 - the simulation clock
    (out / "frames").mkdir(parents=True, exist_ok=True)

    def on_image(m):
        stamp = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
        name = f"frames/{len(rec['images']):04d}.jpg"
        (out / name).write_bytes(bytes(m.data))
        rec["images"].append([stamp, m.format, m.header.frame_id, name])

    def on_info(m):
        rec["info"] = {"frame_id": m.header.frame_id, "width": m.width, "height": m.height,
                       "distortion_model": m.distortion_model, "d": list(m.d), "k": list(m.k),
                       "r": list(m.r), "p": list(m.p)}  # fmt: skip

    node.create_subscription(
        JointState,
        "/joint_states",
        lambda m: rec["js"].append(
            [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, list(m.name), list(m.position)]
        ),
        reliable,
    )
    node.create_subscription(TFMessage, "/tf", lambda m: rec["tf"].append(_tf_list(m)), reliable)
    node.create_subscription(
        CompressedImage,
        "/camera/camera/color/image_raw/compressed",
        on_image,
        qos_profile_sensor_data,
    )
    node.create_subscription(CameraInfo, "/camera/camera/color/camera_info", on_info, reliable)
    node.create_subscription(
        EpisodeStatus,
        "/para_libero_bridge/episode_status",
        lambda m: rec.__setitem__("status", {"done": m.done, "outcome": int(m.outcome)}),
        reliable,
    )
    pub = node.create_publisher(PoseStamped, "/para_policy/eef_target", 10)

    def target(frame: str, pos, quat, stamp_s: float) -> PoseStamped:
        m = PoseStamped()
        m.header.frame_id = frame
        m.header.stamp.sec = int(stamp_s)
        m.header.stamp.nanosec = round((stamp_s - int(stamp_s)) * 1e9)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, pos)
        q = m.pose.orientation
        q.x, q.y, q.z, q.w = map(float, quat)
        return m

    print("ready", flush=True)
    end = time.monotonic() + timeout
    goal, last_sent, static_sub = None, -1.0, None
    while time.monotonic() < end and not (rec["status"] or {}).get("done"):
        rclpy.spin_once(node, timeout_sec=0.05)
        if static_sub is None and len(rec["tf"]) >= 20:  # /tf_static was published long ago
            rec["tf_before_static_subscription"] = len(rec["tf"])
            static_sub = node.create_subscription(
                TFMessage, "/tf_static", lambda m: rec["tf_static"].extend(_tf_list(m)), latched
            )
        if "graph" not in rec and len(rec["tf"]) >= 50:
            rec["graph"] = {
                "topics": {n: t for n, t in node.get_topic_names_and_types()},
                "bridge_publishes": sorted(
                    n for n, _ in node.get_publisher_names_and_types_by_node(
                        "para_libero_bridge", "/")
                ),
                "bridge_subscribes": sorted(
                    n for n, _ in node.get_subscriber_names_and_types_by_node(
                        "para_libero_bridge", "/")
                ),
            }  # fmt: skip
        t = now()
        if not rec["tf_static"] or not rec["tf"] or t - EPISODE_START < COMMAND_AT:
            continue
        if goal is None:  # the TCP now, from TF alone
            T = chain_pose(rec["tf_static"], rec["tf"][-1], "world", "panda_hand_tcp")
            quat = _quat(T)
            goal = (T[:3, 3] + MOVE, quat)
            rec["command"] = {"at": t, "start": T[:3, 3].tolist(), "goal": goal[0].tolist()}
            pub.publish(target("panda_link0", T[:3, 3] + [0.2, 0, 0], quat, t))  # other frame
            pub.publish(target("world", T[:3, 3] - [0, 0.2, 0], quat, t - 1.0))  # stale
        if t - last_sent >= 0.05:
            pub.publish(target("world", goal[0], goal[1], t))
            last_sent = t
    (out / "tool.json").write_text(json.dumps(rec))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _quat(T: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(T[:3, :3]).as_quat()


# -- the run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver_run(tmp_path_factory):
    from tests.ros_helpers.env import ros_isolated_env

    d = tmp_path_factory.mktemp("driver")
    (d / "log").mkdir()
    env = ros_isolated_env(d / "log")
    tool = subprocess.Popen(
        [sys.executable, "-m", "tests.sim.test_bridge_driver", "tool", str(d), "240"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert tool.stdout.readline().strip() == "ready"
    cmd = [sys.executable, "-m", "para_ros.nodes.libero_bridge", "--ros-args", "--params-file",
           str(REPO / "config" / "libero_bridge.yaml")]  # fmt: skip
    for p in (
        "mode:=driver",
        "startup_timeout:=0.0",
        f"image_size:={IMAGE}",
        f"max_steps:={MAX_STEPS}",
        f"max_speed:={MAX_SPEED}",
        f"results_path:={d / 'results.json'}",
    ):
        cmd += ["-p", p]
    t0 = time.monotonic()
    bridge = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - t0
    out, _ = tool.communicate(timeout=60)
    assert bridge.returncode == 0, bridge.stdout[-3000:] + bridge.stderr[-3000:]
    assert tool.returncode == 0, out[-3000:]
    rec = json.loads((d / "tool.json").read_text())
    res = json.loads((d / "results.json").read_text())
    print(
        f"driver run: {wall:.1f} s wall, real-time factor {res['episodes'][0]['real_time_factor']}"
    )
    return d, rec, res


@pytest.fixture(scope="module")
def replica():
    """The held first COMMAND_AT seconds of the episode, replayed in this process: per
    control step k, world <- TCP, and the pinhole render at each camera frame's step."""
    from para_ros.sim.driver_arm import DriverArm
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    sim = LiberoSim(SimConfig(image_size=IMAGE, control_freq=CONTROL_FREQ))
    try:
        arm = DriverArm(sim, MAX_SPEED, 1.0, zero_rotation=True)
        arm.reset(0)
        tcp, renders = [], {}
        for k in range(int(COMMAND_AT * CONTROL_FREQ)):
            tcp.append(arm.tcp_pose())
            if k % 10 == 0:
                renders[k] = sim.render()
            arm.step()
        return np.array(tcp), renders, sim.intrinsics(), sim.camera_pose()
    finally:
        sim.close()


def _decode(path: Path) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    """Decoded JPEG of an RGB image at the bridge's default quality."""
    from para_ros.nodes.driver_mode import DRIVER_PARAMS

    q = DRIVER_PARAMS["jpeg_quality"][0]
    _, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q]
    )
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64)


def _rate(stamps) -> float:
    s = np.unique(np.asarray(stamps))
    return (len(s) - 1) / (s[-1] - s[0])


# -- tests ----------------------------------------------------------------------------------


def test_only_driver_topics_are_published(driver_run):
    _, rec, _ = driver_run
    g = rec["graph"]
    assert g["bridge_publishes"] == sorted([*BRIDGE_TOPICS, "/parameter_events", "/rosout"])
    assert g["bridge_subscribes"] == ["/para_policy/eef_target", "/para_policy/gripper_command"]
    for name, typ in BRIDGE_TOPICS.items():
        assert g["topics"][name] == [typ], name
    for name in g["topics"]:  # `ros2 topic list`: no topic of the other modes
        assert not name.endswith(("eef_pose", "camera_pose")), name
        assert name not in ("/image", "/camera_info", "/para_policy/action"), name


def test_joint_states_and_tf_at_100_hz_camera_at_30_hz(driver_run):
    _, rec, res = driver_run
    names = [f"panda_joint{i}" for i in range(1, 8)] + [
        "panda_finger_joint1",
        "panda_finger_joint2",
    ]
    assert all(n == names for _, n, _ in rec["js"])
    fingers = np.array([p[7:] for _, _, p in rec["js"]])
    assert (fingers > 0.0).all() and (fingers < 0.041).all()  # both open positively
    js_rate = _rate([s for s, _, _ in rec["js"]])
    tf_stamps = [m[0][2] for m in rec["tf"]]
    tf_rate = _rate(tf_stamps)
    img_rate = _rate([s for s, *_ in rec["images"]])
    chain = [f"panda_link{i}" for i in range(8)] + ["panda_hand"]
    for m in rec["tf"]:
        assert [(p, c) for p, c, *_ in m] == list(itertools.pairwise(chain))
        assert len({s for _, _, s, _, _ in m}) == 1  # one stamp per message
    rtf = res["episodes"][0]["real_time_factor"]
    print(f"simulated-time rates: joint_states {js_rate:.1f} Hz, tf {tf_rate:.1f} Hz, "
          f"camera {img_rate:.2f} Hz; real-time factor {rtf:.3f}")  # fmt: skip
    assert js_rate >= 99.9 and tf_rate >= 99.9
    assert 29.5 <= img_rate <= 30.5
    # received without losses: one message per control step over the observed span
    assert len(tf_stamps) >= 0.99 * (max(tf_stamps) - min(tf_stamps)) * CONTROL_FREQ
    assert all(f == "rgb8; jpeg compressed bgr8" and fr == "camera_color_optical_frame"
               for _, f, fr, _ in rec["images"])  # fmt: skip


def test_tf_static_arrives_late_and_tf_gives_the_simulators_tcp(driver_run, replica):
    _, rec, _ = driver_run
    tcp, _, _, T_world_cam = replica
    assert rec["tf_before_static_subscription"] >= 20  # subscribed long after it was sent
    assert [(p, c) for p, c, *_ in rec["tf_static"]] == [
        ("world", "panda_link0"),
        ("panda_hand", "panda_hand_tcp"),
        ("world", "camera_link"),
        ("camera_link", "camera_color_optical_frame"),
    ]
    held = [m for m in rec["tf"] if m[0][2] - EPISODE_START < COMMAND_AT - 1e-6]
    assert len(held) >= 50
    worst_t = worst_r = 0.0
    for m in held:
        k = round((m[0][2] - EPISODE_START) * CONTROL_FREQ)
        T = chain_pose(rec["tf_static"], m, "world", "panda_hand_tcp")
        worst_t = max(worst_t, float(np.abs(T[:3, 3] - tcp[k][:3, 3]).max()))
        worst_r = max(worst_r, float(np.abs(T[:3, :3] - tcp[k][:3, :3]).max()))
    assert worst_t < 1e-6 and worst_r < 1e-6, (worst_t, worst_r)
    # the hand-eye calibration: world <- optical frame is the agentview camera (OpenCV axes)
    T = chain_pose(rec["tf_static"], [], "world", "camera_color_optical_frame")
    np.testing.assert_allclose(T, T_world_cam, atol=1e-9)
    link = chain_pose(rec["tf_static"], [], "world", "camera_link")
    np.testing.assert_allclose(link[:3, 0], T[:3, 2], atol=1e-9)  # x forward = optical z
    np.testing.assert_allclose(link[:3, 1], -T[:3, 0], atol=1e-9)  # y left = -optical x
    np.testing.assert_allclose(link[:3, 2], -T[:3, 1], atol=1e-9)  # z up = -optical y


def test_camera_frames_and_calibration_are_realsense_like(driver_run, replica):
    from para_ros.sim.distorted_camera import REALSENSE_PLUMB_BOB

    d, rec, _ = driver_run
    _, renders, K, _ = replica
    info = rec["info"]
    assert info["frame_id"] == "camera_color_optical_frame"
    assert (info["width"], info["height"], info["distortion_model"]) == (IMAGE, IMAGE, "plumb_bob")
    assert info["d"] == list(REALSENSE_PLUMB_BOB)
    np.testing.assert_allclose(np.reshape(info["k"], (3, 3)), K, atol=1e-9)
    np.testing.assert_allclose(np.reshape(info["p"], (3, 4)), np.hstack([K, np.zeros((3, 1))]))
    assert info["r"] == np.eye(3).reshape(-1).tolist()
    # the oracle, from the published CameraInfo alone: raw pixel (u, v) shows the pinhole
    # render at cv2.undistortPoints((u, v)); JPEG at the bridge's quality
    Kc, D = np.reshape(info["k"], (3, 3)), np.array(info["d"])
    P = np.reshape(info["p"], (3, 4))[:, :3]
    u, v = np.meshgrid(np.arange(IMAGE, dtype=np.float64), np.arange(IMAGE, dtype=np.float64))
    grid = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
    src = cv2.undistortPoints(grid, Kc, D, None, P).reshape(IMAGE, IMAGE, 2).astype(np.float32)
    # image_proc's rectification: undistort with the CameraInfo
    mx, my = cv2.initUndistortRectifyMap(Kc, D, np.eye(3), P, (IMAGE, IMAGE), cv2.CV_32FC1)
    inner = np.s_[3:-3, 3:-3]
    rows = []
    for stamp, *_, name in rec["images"]:
        k = round((stamp - EPISODE_START) * CONTROL_FREQ)
        if k not in renders:
            continue
        got = _decode(d / name).astype(np.float64)
        pinhole = renders[k]
        oracle = cv2.remap(pinhole, src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        rectified = cv2.remap(got, mx, my, cv2.INTER_LINEAR)
        no_jpeg = cv2.remap(oracle.astype(np.float64), mx, my, cv2.INTER_LINEAR)
        P64 = pinhole.astype(np.float64)
        rows.append([
            np.abs(got - _jpeg(oracle)).mean(),
            np.abs(got - _jpeg(pinhole)).mean(),
            np.abs(rectified - P64)[inner].mean(),
            np.abs(_jpeg(pinhole) - P64)[inner].mean(),  # JPEG error
            np.abs(no_jpeg - P64)[inner].mean(),  # interpolation error of distort + undistort
        ])  # fmt: skip
    assert len(rows) >= 5
    r = np.array(rows)
    print(
        "mean abs 8-bit levels: frame vs JPEG(oracle) {:.3f}, vs JPEG(pinhole) {:.2f}; "
        "undistorted vs pinhole {:.2f} (JPEG {:.2f} + interpolation {:.2f})".format(*r.mean(0))
    )
    assert (r[:, 0] < 0.05).all()  # the published frame is the CameraInfo's distortion ...
    assert (r[:, 1] > 0.5).all()  # ... of the render, not the pinhole render itself
    assert (r[:, 2] <= r[:, 3] + r[:, 4]).all()  # undistorted: the pinhole render


def test_bridge_executes_a_pose_target_at_the_speed_limit(driver_run):
    _, rec, res = driver_run
    ep = res["episodes"][0]
    cmd = rec["command"]
    start, goal = np.array(cmd["start"]), np.array(cmd["goal"])
    np.testing.assert_allclose(goal - start, MOVE, atol=1e-12)
    assert ep["ignored_targets"]["frame"] == 1 and ep["ignored_targets"]["stale"] == 1
    assert ep["executed_targets"] >= 10
    assert ep["outcome"] in ("PLACE", "GRASP", "MISS")
    track = [
        (m[0][2], chain_pose(rec["tf_static"], m, "world", "panda_hand_tcp")[:3, 3])
        for m in rec["tf"]
        if m[0][2] >= cmd["at"]
    ]
    t = np.array([s for s, _ in track])
    p = np.array([x for _, x in track])
    final_err = np.linalg.norm(p[-1] - goal)
    assert final_err < 0.003, final_err
    # never toward the ignored targets (+20 cm x in another frame, -20 cm y stale)
    assert np.abs(p[:, 0] - start[0]).max() < 0.01 and (p[:, 1] - start[1]).min() > -0.01
    # the speed bound: 5 cm at MAX_SPEED takes 0.5 s; the TCP's speed over 50 ms windows
    reached = t[np.argmax(np.linalg.norm(p - goal, axis=1) < 0.005)] - cmd["at"]
    speed = np.linalg.norm(p[5:] - p[:-5], axis=1) / (t[5:] - t[:-5])
    print(f"5 cm target: within 5 mm after {reached:.2f} s, peak TCP speed {speed.max():.3f} "
          f"m/s (bound {MAX_SPEED}), final error {final_err * 1e3:.2f} mm")  # fmt: skip
    assert reached >= 0.9 * np.linalg.norm(MOVE) / MAX_SPEED
    assert speed.max() <= 1.15 * MAX_SPEED


def test_distortion_moves_a_projected_point_to_project_points_pixel():
    """A 3D point drawn at its pinhole pixel lands, after DistortedCamera.distort, at
    cv2.projectPoints' distorted pixel (intensity centroid of a small blob)."""
    from para_ros.sim.distorted_camera import REALSENSE_PLUMB_BOB, DistortedCamera

    n = 256
    f = (n / 2) / np.tan(np.radians(45.0) / 2)
    K = np.array([[f, 0, n / 2], [0, f, n / 2], [0, 0, 1.0]])
    cam = DistortedCamera(K, (n, n), REALSENSE_PLUMB_BOB)
    D = np.array(REALSENSE_PLUMB_BOB)
    v, u = np.mgrid[0:n, 0:n].astype(np.float64)
    worst, shifts = 0.0, []
    for X in ([0.0, 0.0, 1.0], [0.35, 0.3, 1.0], [-0.38, 0.33, 1.0], [0.3, -0.37, 1.0]):
        X = np.array(X)
        pin = K @ (X / X[2])
        blob = 255.0 * np.exp(-((u - pin[0]) ** 2 + (v - pin[1]) ** 2) / (2 * 1.5**2))
        raw = cam.distort(np.repeat(blob[..., None], 3, axis=2).astype(np.float32))[..., 0]
        w = np.where(raw > 0.05 * raw.max(), raw, 0.0)
        got = np.array([(w * u).sum(), (w * v).sum()]) / w.sum()
        want, _ = cv2.projectPoints(X[None], np.zeros(3), np.zeros(3), K, D)
        worst = max(worst, float(np.abs(got - want.reshape(2)).max()))
        shifts.append(float(np.linalg.norm(want.reshape(2) - pin[:2])))
    assert worst < 0.05, worst
    assert max(shifts) > 1.0  # the distortion is large enough for this check to mean something


def test_setpoint_moves_at_most_the_speed_bounds_and_stops_at_the_goal():
    from scipy.spatial.transform import Rotation

    from para_ros.sim.driver_arm import SetpointLimiter

    lim = SetpointLimiter([0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], 0.5, 1.0)
    goal_q = Rotation.from_euler("z", 0.3).as_quat()
    steps = []
    for _ in range(40):
        before = lim.pos.copy(), lim.rot
        pos, q = lim.advance([0.1, 0.0, 1.0], goal_q, 0.01)
        steps.append(
            (
                np.linalg.norm(pos - before[0]),
                (Rotation.from_quat(q) * before[1].inv()).magnitude(),
            )
        )
    d = np.array(steps)
    np.testing.assert_allclose(d[:20, 0], 0.005, rtol=1e-9)  # 0.5 m/s x 10 ms
    np.testing.assert_allclose(d[:30, 1], 0.01, rtol=1e-6)  # 1 rad/s x 10 ms
    np.testing.assert_allclose(lim.pos, [0.1, 0.0, 1.0], atol=1e-12)
    assert (Rotation.from_quat(goal_q) * lim.rot.inv()).magnitude() < 1e-9
    assert d[20:, 0].max() == 0.0 and d[30:, 1].max() < 1e-9
    with pytest.raises(ValueError, match="speed bounds must be > 0"):
        SetpointLimiter([0, 0, 0], [0, 0, 0, 1], 0.0, 1.0)


def test_command_filter_counts_each_reason():
    from geometry_msgs.msg import PoseStamped

    from para_ros.nodes.driver_mode import CommandFilter

    class Log:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(text)

    def msg(frame="world", stamp=10.0, pos=(0.1, 0.2, 1.0), w=1.0):
        m = PoseStamped()
        m.header.frame_id = frame
        m.header.stamp.sec, m.header.stamp.nanosec = int(stamp), round(stamp % 1 * 1e9)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = pos
        m.pose.orientation.w = w
        return m

    log = Log()
    f = CommandFilter("world", 0.5, start=9.0, logger=log)
    now = 10.2
    got = f.accept(msg(), now)
    assert got is not None and got[0].tolist() == [0.1, 0.2, 1.0]
    assert f.accept(msg(frame="panda_link0"), now) is None
    assert f.accept(msg(stamp=9.5), now) is None  # 0.7 s old
    assert f.accept(msg(stamp=8.9), now) is None  # before the episode
    assert f.accept(msg(stamp=1.8e9), now) is None  # wall clock: not on use_sim_time
    assert f.accept(msg(pos=(np.nan, 0.0, 1.0)), now) is None
    assert f.accept(msg(w=0.0), now) is None  # no unit quaternion
    assert f.accept(msg(stamp=9.8), now) is not None  # 0.4 s old: within target_timeout
    assert f.accepted == 2
    assert f.counts() == {"stale": 1, "future": 1, "before_episode": 1, "frame": 1, "invalid": 2}
    assert any("use_sim_time" in line for line in log.lines)


def test_deploy_plan_driver_mode_wires_the_policy_as_on_the_franka():
    """`ros2 launch ... sim:=true mode:=driver` / `para-deploy --sim --mode driver`: the policy
    reads the bridge as on a Franka + RealSense (EEF and camera from TF, compressed camera),
    on simulation time; no camera_pose topic."""
    import yaml

    from para_ros.deploy_plan import PlanError, plan

    policy, bridge = plan({"sim": "true", "mode": "driver"})
    params = {}
    for f in policy.params_files:
        params.update(yaml.safe_load(Path(f).read_text())["para_policy"]["ros__parameters"])
    params.update(policy.overrides)
    assert Path(policy.params_files[-1]).name == "franka_realsense.yaml"
    want = {
        "eef_frame": "panda_hand_tcp",
        "camera_frame": "camera_color_optical_frame",
        "image_topic": "/camera/camera/color/image_raw",
        "image_transport": "compressed",
        "camera_info_topic": "/camera/camera/color/camera_info",
        "joint_states_topic": "/joint_states",
        "controller": "streaming",
        "use_sim_time": True,
    }
    assert {k: params[k] for k in want} == want
    assert not params.get("camera_pose_topic")
    assert bridge.overrides["mode"] == "driver" and bridge.overrides["publish_clock"] is True
    with pytest.raises(PlanError, match="mode:=driver simulates robot:=franka_realsense"):
        plan({"sim": "true", "mode": "driver", "robot": "ur_realsense"})


if __name__ == "__main__":
    if sys.argv[1] == "tool":
        sys.exit(_tool(Path(sys.argv[2]), float(sys.argv[3])))
    sys.exit(f"unknown helper {sys.argv[1]!r}")
