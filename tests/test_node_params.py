"""The node's parameter logic (pure): typos, image topics with a transport suffix, the camera
pose's source, the EEF height check, QoS matching, robot profiles."""

from __future__ import annotations

import pytest
import yaml
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from para_ros.core.plausibility import check_eef_height
from para_ros.deploy_plan import ROBOTS, PlanError, plan
from para_ros.nodes.policy_params import (
    BY_NAME,
    camera_pose_source,
    image_subscription,
    unknown_parameters,
)
from para_ros.nodes.qos_match import subscription_qos
from para_ros.runtime.monitor import InputMonitor
from tests.ros_helpers.env import REPO


def test_unknown_parameters_are_named_with_the_close_ones():
    lines = unknown_parameters(
        [
            "eef_frme",
            "image_topic",
            "use_sim_time",
            "qos_overrides./image.subscription.depth",
            "camera_tf_frame",
            "zzz",
        ]
    )
    assert lines == [
        "unknown parameter 'camera_tf_frame' is ignored; did you mean camera_frame or eef_frame "
        "or camera_pose? "
        "(`para_policy --help` lists them)",
        "unknown parameter 'eef_frme' is ignored; did you mean eef_frame or camera_frame? "
        "(`para_policy --help` lists them)",
        "unknown parameter 'zzz' is ignored (`para_policy --help` lists them)",
    ]


@pytest.mark.parametrize(
    "topic, transport, expected",
    [
        ("/camera/color/image_raw", "raw", ("/camera/color/image_raw", "raw")),
        (
            "/camera/color/image_raw",
            "compressed",
            ("/camera/color/image_raw/compressed", "compressed"),
        ),
        (
            "/camera/color/image_raw/",
            "compressed",
            ("/camera/color/image_raw/compressed", "compressed"),
        ),
        # the name `ros2 topic list` shows: accepted with either transport value
        (
            "/camera/color/image_raw/compressed",
            "raw",
            ("/camera/color/image_raw/compressed", "compressed"),
        ),
        (
            "/camera/color/image_raw/compressed",
            "compressed",
            ("/camera/color/image_raw/compressed", "compressed"),
        ),
    ],
)
def test_image_topic_with_or_without_its_transport_suffix(topic, transport, expected):
    got_topic, got_transport, note = image_subscription(topic, transport)
    assert (got_topic, got_transport) == expected
    assert bool(note) == topic.rstrip("/").endswith("/compressed")


@pytest.mark.parametrize("suffix", ["theora", "compressedDepth", "zstd"])
def test_transports_the_node_cannot_decode_are_refused(suffix):
    with pytest.raises(ValueError, match=f"image_transport '{suffix}' topic"):
        image_subscription(f"/cam/image_raw/{suffix}", "raw")
    with pytest.raises(ValueError, match="expected one of"):
        image_subscription("/cam/image_raw", "theora")


def test_camera_pose_source_is_explicit_and_never_the_training_camera_by_default():
    unset = [0.0] * 7
    pose = [0.1, 0, 1, 0, 0, 0, 1]
    assert camera_pose_source("", unset, "")[0] == "tf"
    assert camera_pose_source("", unset, "cam_pose")[0] == "topic"
    assert camera_pose_source("", pose, "")[0] == "parameter"
    assert camera_pose_source("training_camera", unset, "")[0] == "training_camera"
    with pytest.raises(ValueError, match="both camera_pose_topic and camera_pose are set"):
        camera_pose_source("", pose, "cam_pose")
    with pytest.raises(ValueError, match="camera_pose_topic is empty"):
        camera_pose_source("topic", unset, "")
    with pytest.raises(ValueError, match="camera_pose is all zeros"):
        camera_pose_source("parameter", unset, "")
    with pytest.raises(ValueError, match="expected one of"):
        camera_pose_source("model", unset, "")


def test_eef_height_names_the_world_frame_mismatch():
    assert check_eef_height(0.95, 0.8, 1.1, "world") is None
    assert check_eef_height(0.8 - 0.299, 0.8, 1.1, "world") is None  # margin 0.3 m
    assert check_eef_height(1.1 + 0.299, 0.8, 1.1, "world") is None  # a start pose above
    bad = check_eef_height(0.05, 0.8, 1.1, "world")
    assert bad.category == "eef_height"
    assert "z = 0.050 m in 'world', 0.750 m below the model's height range" in bad.reason
    assert "allowed 0.500 .. 1.400" in bad.reason
    assert "allowed -0.500 .. 2.500" in check_eef_height(-0.6, 0.5, 1.5, "w").reason  # span
    high = check_eef_height(2.0, 0.8, 1.1, "base_link")
    assert "0.900 m above" in high.reason and "'base_link' is probably not" in high.reason


def test_subscription_qos_matches_each_kind_of_publisher():
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    kind, qos = subscription_qos(latched)
    assert kind == "latched_reliable"
    assert qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos.reliability == ReliabilityPolicy.RELIABLE
    for pub in (
        QoSProfile(depth=10),
        QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
    ):
        kind, qos = subscription_qos(pub)
        assert kind == "live" and qos.reliability == ReliabilityPolicy.BEST_EFFORT
        assert qos.durability == DurabilityPolicy.VOLATILE


def test_input_monitor_says_what_is_missing_and_why():
    m = InputMonitor("eef_pose", "/eef_pose (geometry_msgs/PoseStamped in frame 'world')")
    assert m.status(0) == (
        "eef_pose: /eef_pose (geometry_msgs/PoseStamped in frame 'world'): none received; "
        "0 publisher(s) on the topic"
    )
    for _ in range(3):
        m.receive(1.0)
        m.drop("eef_pose_frame", "EEF pose is in frame 'base', expected 'world'")
    assert m.status() == (
        "eef_pose: /eef_pose (geometry_msgs/PoseStamped in frame 'world'): 3 received, 0 used, "
        "3 dropped (last: eef_pose_frame: EEF pose is in frame 'base', expected 'world')"
    )


@pytest.mark.parametrize("robot", ROBOTS)
def test_robot_profiles_name_only_node_parameters_and_load_after_the_params_file(robot):
    (node,) = plan({"robot": robot})
    assert node.params_files[0].endswith("config/deploy.yaml")
    assert node.params_files[1].endswith(f"config/robots/{robot}.yaml")
    args = node.ros_args()
    assert args.count("--params-file") == 2
    text = (REPO / "config" / "robots" / f"{robot}.yaml").read_text()
    params = yaml.safe_load(text)["para_policy"]["ros__parameters"]
    assert set(params) <= set(BY_NAME), set(params) - set(BY_NAME)
    assert params["camera_pose_source"] == "tf" and params["eef_frame"]
    assert params["controller"] == "streaming"
    assert text.startswith("# Robot profile:")  # it names the drivers it comes from


def test_unknown_robot_profile_is_refused_with_the_close_name():
    with pytest.raises(PlanError, match="did you mean franka_realsense"):
        plan({"robot": "franka"})
