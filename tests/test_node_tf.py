"""The policy node on a real arm's graph: EEF and camera from /tf + /tf_static, a compressed
RealSense camera, /joint_states; no relay node, no PoseStamped, no camera pose parameter.

The inputs are the field recording (written by `rosbags`, shaped like franka_ros2 +
realsense2_camera), published by tests/ros_helpers/bag_driver.py with the drivers' QoS; the
model is the shipped one. The same frames with the EEF as a PoseStamped (interpolated
independently with pytransform3d) and the camera as a parameter must give the same commands.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from para_ros.resources import model_file
from tests.ros_helpers.env import REPO
from tests.ros_helpers.policy_fixture import node_command

pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is built by the package install")

TF_PARAMS = [
    "eef_frame:=panda_hand_tcp",
    "camera_frame:=camera_color_optical_frame",
    "image_transport:=compressed",
    "image_topic:=/camera/camera/color/image_raw",
    "camera_info_topic:=/camera/camera/color/camera_info",
    "joint_states_topic:=/joint_states",
]


def _start(env, log, *params):
    cmd = node_command(model_file(), "use_sim_time:=true", "diagnostics_period:=0.25", *params)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _run(tmp_path, env, name, params, eef_pose_topic=""):
    from tests.ros_helpers.bag_driver import BagGraph

    log_path = tmp_path / f"{name}.log"
    graph = BagGraph(eef_pose_topic=eef_pose_topic)
    with open(log_path, "w") as log:
        proc = _start(env, log, *params)
        try:
            assert graph.wait_for_node(), log_path.read_text()
            answered = graph.play()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            graph.close()
    return graph.actions, answered, log_path.read_text()


def _commands(actions) -> dict[float, np.ndarray]:
    out = {}
    for stamp, a in actions.items():
        if a.command_published:
            p = a.command.position
            out[stamp] = np.array([p.x, p.y, p.z, a.command_gripper])
    return out


def test_tf_graph_gives_the_commands_of_posestamped_inputs(tmp_path, ros_env):
    # the camera pose the bag's /tf_static chain gives (world <- optical), as a parameter
    from tests.ros_helpers.bag_driver import FIELD_BAG, read_bag

    msgs = read_bag(FIELD_BAG / "ep_0")
    static = {
        tr.child_frame_id: tr.transform
        for _s, t, m in msgs
        if t == "/tf_static"
        for tr in m.transforms
    }
    from scipy.spatial.transform import Rotation

    def T(tf):
        M = np.eye(4)
        r, t = tf.rotation, tf.translation
        M[:3, :3] = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
        M[:3, 3] = [t.x, t.y, t.z]
        return M

    T_cam = T(static["camera_link"]) @ T(static["camera_color_optical_frame"])
    q = Rotation.from_matrix(T_cam[:3, :3]).as_quat()
    cam = "camera_pose:=[" + ", ".join(repr(float(v)) for v in [*T_cam[:3, 3], *q]) + "]"

    tf_actions, tf_answered, tf_log = _run(tmp_path, ros_env, "tf", [*TF_PARAMS, "eef_frme:=typo"])
    pose_actions, pose_answered, pose_log = _run(
        tmp_path,
        ros_env,
        "pose",
        [
            "eef_pose_topic:=/eef_pose",
            cam,
            # the compressed transport's own topic name, as `ros2 topic list` shows it
            "image_topic:=/camera/camera/color/image_raw/compressed",
            "camera_info_topic:=/camera/camera/color/camera_info",
        ],
        eef_pose_topic="/eef_pose",
    )
    n_images = sum(1 for _s, t, _m in msgs if t == "/camera/camera/color/image_raw/compressed")
    assert tf_answered == n_images == 49, tf_log
    assert pose_answered == n_images, pose_log
    tf_cmd, pose_cmd = _commands(tf_actions), _commands(pose_actions)
    assert len(tf_cmd) >= 40, tf_log  # the shipped model acts on this recording
    assert tf_cmd.keys() == pose_cmd.keys()
    worst = max(np.abs(tf_cmd[k] - pose_cmd[k]).max() for k in tf_cmd)
    assert worst < 1e-6, worst
    # the start log says where each pose comes from, and flags the typo with the close name
    assert "camera pose: tf: world <- camera_color_optical_frame" in tf_log, tf_log
    assert "EEF pose: /tf + /tf_static (tf2_msgs/TFMessage): world <- panda_hand_tcp" in tf_log
    assert "unknown parameter 'eef_frme' is ignored; did you mean eef_frame" in tf_log
    assert "camera pose: parameter camera_pose" in pose_log, pose_log
    assert "is a compressed transport topic: subscribing sensor_msgs/CompressedImage" in pose_log
    # a standard run: the drivers' QoS and the node's subscriptions match without warnings
    for log in (tf_log, pose_log):
        assert "incompatible" not in log.lower(), log
