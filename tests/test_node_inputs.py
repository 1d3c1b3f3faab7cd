"""The policy node against what real camera drivers and arms send (issue 12): every kind of
implausible input is refused with a reason in /diagnostics that names it, no command is
published, and a good frame afterwards is answered; distortion, latched topics, compressed
images and a clock that jumps back are handled. Real rclpy processes, loopback only."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from para_ros.core import geometry
from para_ros.core.action_codec import Codecs
from tests.ros_helpers.policy_fixture import (
    EEF_POS,
    T_WORLD_CAM,
    VOXEL,
    Driver,
    K,
    make_test_spec,
    start_node,
    wait_for,
    write_model,
)

pytestmark = pytest.mark.ros
ISSUE_D = [-0.42, 0.21, 0.001, -0.002, -0.06]  # the issue's plumb_bob camera


@pytest.fixture(scope="module")
def driver():
    d = Driver()
    yield d
    d.close()


class Node:
    def __init__(self, tmp, driver, *params: str, name: str = "const", started=None):
        from tests.ros_helpers.env import ros_isolated_env

        self.log = tmp / f"{name}.log"
        self.model = write_model(tmp / f"{name}.onnx")
        self.proc = start_node(self.model, ros_isolated_env(tmp), *params, log=self.log)
        # diagnostics run on the node's clock: under use_sim_time `started` drives /clock
        assert wait_for(lambda: driver.diag(self.model), 30, step=started), self.log.read_text()

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def window(driver, node: Node, reason: str, seconds: float = 1.5, **send) -> dict:
    """Send bad input for `seconds`: the node stays up, publishes no command (and no held
    re-publication either), and counts the reason."""
    time.sleep(0.4)  # frames of the previous test drain
    before = int(driver.diag(node.model).get(f"skipped.{reason}", 0))
    t0 = time.monotonic()
    while time.monotonic() < t0 + seconds:
        driver.send(**send)
        time.sleep(0.1)
    time.sleep(0.6)  # the window's last diagnostics
    assert node.proc.poll() is None, node.log.read_text()
    assert [a for a in driver.messages("action", t0) if a.command_published] == []
    assert driver.count("target", t0) == 0 and driver.count("gripper", t0) == 0
    diag = driver.diag(node.model)
    assert int(diag.get(f"skipped.{reason}", 0)) > before, diag
    return diag


def answered(driver, **send) -> bool:
    t0 = time.monotonic()
    return wait_for(lambda: driver.count("target", t0) >= 1, 20, step=lambda: driver.send(**send))


class TestRefused:
    """One node, fed each kind of implausible input; a good frame is answered after each.
    (Class-scoped: every node publishes on /para_policy/*, so the other tests run alone.)"""

    @pytest.fixture(scope="class")
    def node(self, tmp_path_factory, driver):
        n = Node(tmp_path_factory.mktemp("inputs"), driver)
        yield n
        n.close()

    def test_good_frames_are_answered(self, driver, node):
        assert answered(driver)

    @pytest.mark.parametrize("ahead", [10.0, 1.0])
    def test_future_stamps(self, driver, node, ahead):
        # one fixed stamp, `ahead` s in the future when sent; the window ends before it is
        d = window(driver, node, "future_stamp", seconds=ahead / 2, stamp=driver.stamp(ahead))
        assert (
            "ahead of the node's clock (at most future_tolerance 0.1 s)" in d["last_skip_reason"]
        )
        assert answered(driver)

    def test_frames_older_than_the_last_processed_one(self, driver, node):
        assert answered(driver)
        old = driver.stamp(-0.2)  # before the frame just answered, still within max_image_age
        d = window(driver, node, "out_of_order", seconds=0.25, stamp=old)
        assert "older than the last processed frame" in d["last_skip_reason"]
        assert answered(driver)

    def test_stamps_far_in_the_past_reset_the_history_and_warn(self, driver, node):
        # a camera driver restarted with a clock 30 s behind: not "out of order" forever
        assert answered(driver)
        d = window(driver, node, "stale_image", seconds=1.0, stamp=driver.stamp(-30.0))
        assert re.search(r"image is 3\d\.\d+ s old", d["last_skip_reason"]), d

        assert "image stamps jumped back" in node.log.read_text()
        level, message = driver.diag_status(node.model)
        assert level == 1 and message.startswith("stale_image"), (level, message)
        assert answered(driver)

    def test_zero_intrinsics_are_named(self, driver, node):
        d = window(driver, node, "intrinsics_invalid", info_k=[0.0] * 9)
        assert "focal lengths fx=0, fy=0" in d["last_skip_reason"]
        assert "ray does not meet" not in d["last_skip_reason"]
        assert answered(driver)

    def test_principal_point_outside_the_image(self, driver, node):
        k = K.copy()
        k[0, 2] = 90.0
        d = window(driver, node, "intrinsics_invalid", info_k=k.ravel())
        assert "principal point (90, 32) px is outside the 64x64 image" in d["last_skip_reason"]
        assert answered(driver)

    def test_empty_eef_frame_is_not_the_world(self, driver, node):
        d = window(driver, node, "no_eef_pose", eef_frame="")
        assert int(d.get("dropped.eef_pose.eef_pose_frame", 0)) > 0
        assert answered(driver)

    def test_eef_in_another_frame_is_named_with_its_topic_and_reason(self, driver, node):
        # messages arrive at the camera's rate but none is usable: the frames' skip reason
        # and the input's line say which topic, type and frame, and why they were dropped
        d = window(driver, node, "no_eef_pose", eef_frame="base")
        status = d["input.eef_pose"]
        assert status.startswith("eef_pose: eef_pose (geometry_msgs/PoseStamped in frame 'world')")
        assert "EEF pose is in frame 'base', expected 'world'" in status, status
        assert "EEF pose is in frame 'base'" in d["last_skip_reason"], d["last_skip_reason"]
        assert int(d["dropped.eef_pose.eef_pose_frame"]) > 5
        assert answered(driver)

    def test_non_unit_eef_quaternion(self, driver, node):
        d = window(driver, node, "no_eef_pose", eef_quat=[0.0, 0.0, 0.0, 0.5])
        assert int(d["dropped.eef_pose.eef_pose_invalid"]) > 0
        assert answered(driver)

    def test_eef_height_outside_the_model_range_names_the_world_frame(self, driver, node):
        # a robot whose `world` is 0.9 m below the training world: EEF at z = 0.05 m
        d = window(driver, node, "eef_height", eef_pos=EEF_POS - [0.0, 0.0, 0.9])
        reason = d["last_skip_reason"]
        assert "the EEF is at z = 0.050 m in 'world', 0.750 m below the model's height" in reason
        assert "height range [0.800, 1.100] m" in reason, reason
        assert "is probably not the one the model was trained in" in reason, reason
        assert answered(driver)

    def test_eef_outside_the_camera_view(self, driver, node):
        # 0.5 m sideways: in front of the camera, left of the image
        d = window(driver, node, "start_off_image", eef_pos=EEF_POS + [0.0, 0.5, 0.0])
        assert "projects to pixel (-9.8, 40.5), outside the 64x64 image" in d["last_skip_reason"]
        assert answered(driver)

    def test_eef_behind_the_camera(self, driver, node):
        d = window(driver, node, "start_behind_camera", eef_pos=EEF_POS + [2.0, 0.0, 0.0])
        assert "is behind the camera (depth -0.07548 m)" in d["last_skip_reason"]
        assert answered(driver)


def test_distorted_camera_is_rectified_and_its_p_used(tmp_path, driver):
    """The issue's plumb_bob camera: frames are rectified and the model sees the rectified
    pinhole camera P (here with 0.8x the focal length): targets are the lift through P."""
    P = np.hstack([K * [[0.8], [0.8], [1.0]], np.zeros((3, 1))])
    n = Node(tmp_path, driver, "execute_step:=0")
    try:
        t0 = time.monotonic()
        assert answered(driver, info_d=ISSUE_D, info_p=P.ravel())
        a = driver.messages("action", t0)[-1]
        assert a.status == a.STATUS_OK
        c = Codecs.from_spec(make_test_spec())
        uv = geometry.cell_center(VOXEL[:, 1], VOXEL[:, 2], (64, 64), (16, 16))
        want = geometry.lift(uv, c.height.decode(VOXEL[:, 0]), P[:, :3], T_WORLD_CAM).points
        got = np.array([[p.position.x, p.position.y, p.position.z] for p in a.poses])
        assert np.abs(got - want).max() < 1e-6
        assert wait_for(lambda: "decode_ms.count" in driver.diag(n.model), 5)
    finally:
        n.close()


def test_distortion_can_be_refused(tmp_path, driver):
    n = Node(tmp_path, driver, "distortion:=refuse")
    try:
        d = window(driver, n, "distortion_refused", info_d=ISSUE_D)
        assert "parameter distortion is 'refuse'" in d["last_skip_reason"]
        assert answered(driver)  # d all zero again
    finally:
        n.close()


def test_latched_camera_info_and_camera_pose_published_before_start(tmp_path, driver):
    from geometry_msgs.msg import PoseStamped
    from scipy.spatial.transform import Rotation
    from sensor_msgs.msg import CameraInfo

    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    pub_info = driver.node.create_publisher(CameraInfo, "latched/camera_info", latched)
    pub_pose = driver.node.create_publisher(PoseStamped, "latched/camera_pose", latched)
    pub_info.publish(driver.camera_info(driver.stamp()))
    pose = PoseStamped()
    pose.header.frame_id = "world"
    pose.header.stamp = driver.stamp()
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = T_WORLD_CAM[:3, 3]
    q = Rotation.from_matrix(T_WORLD_CAM[:3, :3]).as_quat()
    o = pose.pose.orientation
    o.x, o.y, o.z, o.w = map(float, q)
    pub_pose.publish(pose)
    time.sleep(0.5)
    n = Node(
        tmp_path,
        driver,
        "camera_info_topic:=latched/camera_info",
        "camera_pose_topic:=latched/camera_pose",
        "camera_pose_source:=topic",
    )
    try:
        assert answered(driver, info=False), driver.diag(n.model)
    finally:
        n.close()
        driver.node.destroy_publisher(pub_info)
        driver.node.destroy_publisher(pub_pose)


def test_a_camera_losing_frames_shows_in_diagnostics(tmp_path, driver):
    n = Node(tmp_path, driver, "expected_image_rate:=30.0")
    try:
        t0 = time.monotonic()
        while time.monotonic() < t0 + 3.0:  # 5 Hz instead of 30
            driver.send()
            time.sleep(0.2)
        level, message = driver.diag_status(n.model)
        assert level == 1 and "expected 30.0 Hz" in message, message  # WARN
        assert driver.diag(n.model)["rate_hz.image.expected"] == "30.00"
    finally:
        n.close()


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_compressed_images(tmp_path, driver, codec):
    n = Node(tmp_path, driver, "image_transport:=compressed", name=codec)
    try:
        assert answered(driver, compressed=codec)
        assert wait_for(lambda: "decode_ms.count" in driver.diag(n.model), 5)
        assert float(driver.diag(n.model)["decode_ms.p50"]) < 50
    finally:
        n.close()


def test_a_clock_jumping_back_resets_the_history(tmp_path, driver):
    """A looped bag under use_sim_time: after the jump the node answers new frames again
    instead of refusing them all as older than the last one."""
    from builtin_interfaces.msg import Time

    def at(t):
        return Time(sec=int(t), nanosec=int((t % 1) * 1e9))

    clock = {"t": 1000.0}

    def tick():
        clock["t"] += 0.1
        driver.clock(clock["t"])
        driver.send(stamp=at(clock["t"]))

    n = Node(tmp_path, driver, "use_sim_time:=true", "watchdog_timeout:=100.0", started=tick)
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("target", t0) >= 2, 20, step=tick)
        clock["t"] = 500.0  # the bag starts over
        t1 = time.monotonic()
        assert wait_for(lambda: driver.count("target", t1) >= 2, 20, step=tick)
        assert wait_for(lambda: "skipped.history_reset" in driver.diag(n.model), 10, step=tick)
        assert int(driver.diag(n.model)["skipped.history_reset"]) == 1
        assert "clock jumped back" in n.log.read_text()
    finally:
        n.close()


def test_a_camera_pose_parameter_in_wxyz_order_is_refused_at_start(tmp_path):
    from scipy.spatial.transform import Rotation

    from tests.ros_helpers.env import ros_isolated_env

    q = Rotation.from_matrix(T_WORLD_CAM[:3, :3]).as_quat()
    vals = [*T_WORLD_CAM[:3, 3], *np.roll(q, 1)]  # w first: a common mistake
    pose = "camera_pose:=[" + ", ".join(repr(float(v)) for v in vals) + "]"
    proc = start_node(write_model(tmp_path / "m.onnx"), ros_isolated_env(tmp_path), pose)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "camera_pose parameter:" in out and "(w, x, y, z)" in out, out


def test_an_implausible_camera_pose_after_a_good_one_stops_commands(tmp_path, driver):
    """A calibration source that starts sending nonsense (empty frame, NaN) is not silently
    replaced by the last good pose: frames are refused until a good pose arrives again."""
    from geometry_msgs.msg import PoseStamped
    from scipy.spatial.transform import Rotation

    pub = driver.node.create_publisher(PoseStamped, "cam_pose", QoSProfile(depth=10))

    def pose(frame="world", x=None):
        m = PoseStamped()
        m.header.frame_id = frame
        m.header.stamp = driver.stamp()
        p = T_WORLD_CAM[:3, 3] if x is None else x
        m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, p)
        q = Rotation.from_matrix(T_WORLD_CAM[:3, :3]).as_quat()
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = map(float, q)
        return m

    n = Node(tmp_path, driver, "camera_pose_topic:=cam_pose", "camera_pose_source:=topic")
    try:
        window(driver, n, "no_camera_pose", seconds=0.5)  # no pose yet
        pub.publish(pose())
        assert answered(driver)
        pub.publish(pose(frame=""))
        d = window(driver, n, "camera_pose_frame")
        assert "camera pose has an empty header.frame_id" in d["last_skip_reason"]
        pub.publish(pose(x=[float("nan"), 0.0, 1.0]))
        window(driver, n, "camera_pose_invalid")
        pub.publish(pose())
        assert answered(driver)
    finally:
        n.close()
        driver.node.destroy_publisher(pub)


def test_diagnostics_run_on_the_steady_clock_under_use_sim_time(tmp_path, driver):
    """No /clock at all (a paused bag, a stopped simulation): /diagnostics still arrive."""
    n = Node(tmp_path, driver, "use_sim_time:=true")  # waits for the node's diagnostics
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("diag", t0) >= 3, 5)
    finally:
        n.close()


def test_a_parameter_of_the_wrong_type_is_one_error_line(tmp_path):
    import subprocess
    import sys

    from tests.ros_helpers.env import REPO, ros_isolated_env

    for module, param in (
        ("para_ros.nodes.policy_node", "threads:=abc"),
        ("para_ros.nodes.libero_bridge", "episodes:=abc"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", module, "--ros-args", "-p", param],
            cwd=REPO,
            env=ros_isolated_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 2, res.stderr[-2000:]
        assert "Traceback" not in res.stderr and ": error:" in res.stderr, res.stderr[-2000:]
