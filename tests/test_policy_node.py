"""The policy node end to end: real rclpy in separate processes, loopback only.

A constant-output ONNX model (known voxel, gripper and rotation classes) runs in the node;
the published targets must equal the geometry core's lift of those classes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from para_ros.core import geometry
from para_ros.core.action_codec import Codecs
from tests.ros_helpers.policy_fixture import (
    EEF_POS,
    GRIP,
    PROB,
    ROT,
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


@pytest.fixture(scope="module")
def driver():
    d = Driver()
    yield d
    d.close()


def expected_targets():
    spec = make_test_spec()
    c = Codecs.from_spec(spec)
    uv = geometry.cell_center(VOXEL[:, 1], VOXEL[:, 2], (64, 64), (16, 16))
    h = c.height.decode(VOXEL[:, 0])
    return (
        geometry.lift(uv, h, K, T_WORLD_CAM).points,
        c.gripper.decode(GRIP),
        c.rotation.decode(ROT),
        uv,
        h,
    )


def test_end_to_end_targets_equal_the_geometry_core(tmp_path, driver, ros_env):
    model = write_model(tmp_path / "const.onnx")
    node = start_node(
        model, ros_env, "execute_step:=1", "publish_heatmap:=true", log=tmp_path / "node.log"
    )
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("target", t0) >= 2, 30, step=driver.send), (
            tmp_path / "node.log"
        ).read_text()
        action = driver.messages("action", t0)[-1]
        pos, grip, euler, uv, h = expected_targets()
        got = np.array([[p.position.x, p.position.y, p.position.z] for p in action.poses])
        assert np.abs(got - pos).max() < 1e-3  # within 1 mm (float64 end to end: ~1e-12)
        assert np.allclose(action.gripper, grip) and list(action.gripper_bins) == GRIP.tolist()
        eul = np.array([[v.x, v.y, v.z] for v in action.rotation_euler])
        assert np.allclose(eul, euler) and list(action.rotation_bins) == ROT.tolist()
        assert np.allclose(action.confidence, PROB, atol=1e-6)
        assert np.allclose(action.pixel_u, uv[:, 0]) and np.allclose(action.height, h)
        assert action.command_published and action.execute_step == 1
        assert action.header.frame_id == "world" and action.model_id == "const"
        target = driver.messages("target", t0)[-1]
        tp = [target.pose.position.x, target.pose.position.y, target.pose.position.z]
        assert np.abs(np.array(tp) - pos[1]).max() < 1e-3  # execute_step 1
        assert driver.messages("gripper", t0)[-1].data == pytest.approx(grip[1])
        rot = driver.messages("rotation", t0)[-1].vector
        assert [rot.x, rot.y, rot.z] == pytest.approx(euler[1].tolist())
        assert wait_for(lambda: driver.diag(model).get("providers") == "CPUExecutionProvider", 5)
        # the default parameters ask for TensorRT/CUDA: the diagnostics say why they do not run
        assert "no GPU providers" in driver.diag(model)["provider_fallback"]
        heat = driver.messages("heatmap", t0)[-1]
        assert (heat.width, heat.height, heat.encoding) == (64, 64, "rgb8")
        assert len(heat.data) == 64 * 64 * 3 and max(heat.data) == 255
        assert node.poll() is None
    finally:
        node.terminate()
        node.wait(10)


def test_step_limit_and_workspace_clamp(tmp_path, driver, ros_env):
    model = write_model(tmp_path / "const.onnx")
    # the EEF (z 0.95) inside the box; the predicted targets reach below and above it
    node = start_node(model, ros_env, "max_step:=0.02", "workspace_max:=[10.0, 10.0, 0.96]")
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("target", t0) >= 1, 30, step=driver.send)
        t = driver.messages("target", t0)[-1].pose.position
        p = np.array([t.x, t.y, t.z])
        assert np.linalg.norm(p - EEF_POS) == pytest.approx(0.02, abs=1e-9)
        assert p[2] <= 0.96
        last = driver.messages("action", t0)[-1]
        assert last.status == last.STATUS_OK_CLAMPED == "ok_clamped"
    finally:
        node.terminate()
        node.wait(10)


@pytest.fixture(scope="module")
def bad_input_node(tmp_path_factory, driver):
    from tests.ros_helpers.env import ros_isolated_env

    d = tmp_path_factory.mktemp("bad")
    model = write_model(d / "const.onnx")
    proc = start_node(model, ros_isolated_env(d), log=d / "node.log")
    assert wait_for(lambda: driver.diag(model), 30), (d / "node.log").read_text()
    yield proc, d / "node.log", model
    proc.terminate()
    proc.wait(10)


def test_low_confidence_is_never_a_command(tmp_path, driver, ros_env):
    model = write_model(tmp_path / "const.onnx")
    node = start_node(model, ros_env, "min_confidence:=0.95")  # the model says 0.9
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("action", t0) >= 3, 30, step=driver.send)
        actions = driver.messages("action", t0)
        assert not any(a.command_published for a in actions)
        assert actions[-1].status == actions[-1].STATUS_REFUSED_LOW_CONFIDENCE
        assert "confidence 0.900 below min_confidence 0.950" in actions[-1].status_detail
        assert driver.count("target", t0) == 0 and driver.count("gripper", t0) == 0
    finally:
        node.terminate()
        node.wait(10)


class TestBadInput:
    """One node, fed bad input of each kind: it stays alive and publishes no command; while
    inputs are stale it holds by publishing nothing (the controller keeps its last target)."""

    @pytest.fixture
    def node(self, bad_input_node):
        return bad_input_node

    def _window(self, driver, node, reason: str, seconds: float = 2.0, **send):
        proc, log, model = node
        time.sleep(0.5)  # let frames of the previous test drain
        before = int(driver.diag(model).get(f"skipped.{reason}", 0))
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            driver.send(**send)
            time.sleep(0.1)
        time.sleep(0.6)  # the last diagnostics of the window
        assert proc.poll() is None, log.read_text()
        new_cmds = [a for a in driver.messages("action", t0) if a.command_published]
        assert new_cmds == [] and driver.count("gripper", t0) == 0
        assert driver.count("target", t0) == 0  # no held re-publication either
        diag = driver.diag(model)
        assert int(diag.get(f"skipped.{reason}", 0)) > before, diag
        return diag

    def test_no_camera_info(self, driver, node):
        d = self._window(driver, node, "no_camera_info", info=False)
        assert "no CameraInfo" in d["last_skip_reason"]

    def test_good_frame_after_camera_info(self, driver, node):
        t0 = time.monotonic()
        assert wait_for(lambda: driver.count("target", t0) >= 1, 20, step=driver.send)

    def test_wrong_encoding(self, driver, node):
        d = self._window(driver, node, "image_format", encoding="32FC1")
        assert "unsupported image encoding '32FC1'" in d["last_skip_reason"]

    def test_wrong_image_size(self, driver, node):
        d = self._window(driver, node, "image_size", size=(48, 80))
        assert "image is 80x48 but camera_info is 64x64" in d["last_skip_reason"]

    def test_nan_in_joint_state(self, driver, node):
        self._window(driver, node, "joints_nonfinite", joint_value=float("nan"))

    def test_stale_image(self, driver, node):
        d = self._window(driver, node, "stale_image", image_age=2.0)
        assert "max_image_age" in d["last_skip_reason"]

    def test_eef_pose_missing(self, driver, node):
        d = self._window(driver, node, "no_eef_pose", eef=False, seconds=2.5)
        assert "eef_pose" in d["holding_last_target"]  # the watchdog says why it holds

    def test_recovers(self, driver, node):
        t0 = time.monotonic()
        assert wait_for(
            lambda: any(a.command_published for a in driver.messages("action", t0)),
            20,
            step=driver.send,
        )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("corrupt", "cannot load ONNX model"),
        ("version", "unknown version 7"),
        ("frame", "the model's world frame is 'map' but parameter world_frame is 'world'"),
        ("no_contract", "no `para.policy_spec` in the ONNX metadata"),
    ],
)
def test_refuses_to_start(tmp_path, ros_env, case, expected):
    import json

    import onnx

    path = tmp_path / "m.onnx"
    if case == "corrupt":
        path.write_bytes(b"\x08\x01garbage" * 100)
    elif case == "frame":
        write_model(path, world_frame="map")
    else:
        write_model(path)
        m = onnx.load(str(path))
        prop = next(p for p in m.metadata_props if p.key == "para.policy_spec")
        if case == "version":
            d = json.loads(prop.value)
            d["spec_version"] = 7
            prop.value = json.dumps(d)
        else:
            m.metadata_props.remove(prop)
        onnx.save(m, str(path))
    proc = start_node(path, ros_env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("para_policy: error:")]
    assert len(errors) == 1 and expected in errors[0], out


def test_streaming_commands_move_at_most_the_model_speed(tmp_path, driver, ros_env):
    """A still arm fed at ~20 Hz: under a streaming controller each command is at most
    max_speed x the time since the previous command from the EEF (not 22 steps of max_step
    a second); the bound is in the start log and /diagnostics."""
    model = write_model(tmp_path / "speed.onnx")  # its model_id tells its actions apart
    log = tmp_path / "node.log"
    node = start_node(model, ros_env, "controller:=streaming", "max_speed:=0.2", log=log)
    try:
        t0 = time.monotonic()
        sent = []

        def send():
            stamp = driver.stamp()
            sent.append(stamp.sec + stamp.nanosec * 1e-9)
            driver.send(stamp=stamp)
            time.sleep(0.05)

        assert wait_for(lambda: driver.count("action", t0) >= 15, 60, step=send), log.read_text()
        acts = [
            a
            for a in driver.messages("action", t0)
            if a.command_published and a.model_id == "speed"
        ]
        stamps = [a.header.stamp.sec + a.header.stamp.nanosec * 1e-9 for a in acts]
        steps = [
            np.linalg.norm(
                [a.command.position.x, a.command.position.y, a.command.position.z] - EEF_POS
            )
            for a in acts
        ]
        pos, *_ = expected_targets()
        full = float(np.linalg.norm(pos[0] - EEF_POS))
        assert full > 0.05  # the chunk's step is further than the bound allows
        for prev, cur, step, a in zip(stamps, stamps[1:], steps[1:], acts[1:], strict=False):
            assert step <= 0.2 * (cur - prev) + 1e-9, (step, cur - prev)
            assert a.status == "ok_clamped" and "max_speed" in a.status_detail
        assert max(steps[1:]) < 0.05  # ~1 cm per frame at 20 Hz, never the 1 m max_step
        diag = driver.diag(model)
        assert diag["speed_limit"].startswith("streaming (parameter): <= 0.2 m/s"), diag
        assert "speed limit: streaming (parameter): <= 0.2 m/s (parameter)" in log.read_text()
    finally:
        node.terminate()
        node.wait(10)
