"""tf2_msgs on a pip install: the bundled interfaces/tf2_msgs (setup.py) is the real
tf2_msgs/msg/TFMessage on the wire, and a ROS install's own tf2_msgs is used when present.

Run as a module, this file is also the two helper processes of the round trip:

    python -m tests.test_tf2_msgs publish SECONDS   /tf_static once, then /tf at 50 Hz
    python -m tests.test_tf2_msgs subscribe SECONDS (prints one JSON line)
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ros_helpers import launch_stack
from tests.ros_helpers.env import REPO, ros_isolated_env

TYPE = "tf2_msgs/msg/TFMessage"
STATIC = [("world", "panda_link0"), ("panda_hand", "camera_color_optical_frame")]
N_TF = 20  # /tf messages the subscriber waits for
LATE_JOIN_S = 1.0  # the subscriber starts this long after /tf_static was published


def load_setup():
    """setup.py as a module (its setup() call runs only as __main__, as pip's backend runs it)."""
    spec = importlib.util.spec_from_file_location("para_ros_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_transform(k: int) -> dict:
    """The k-th transform the publisher sends: /tf_static for k < 0 (index -1 - k into STATIC),
    else panda_link0 <- panda_hand at stamp 100 s + k ms, rotating about z (x, y, z, w)."""
    if k < 0:
        parent, child = STATIC[-1 - k]
        return {
            "parent": parent,
            "child": child,
            "stamp": [0, 0],
            "t": [0.05 * (-k), -0.03, 0.1],
            "q": [0.0, 0.0, math.sin(0.5 * 0.3 * k), math.cos(0.5 * 0.3 * k)],
        }
    return {
        "parent": "panda_link0",
        "child": "panda_hand",
        "stamp": [100, k * 1_000_000],
        "t": [0.5, 0.01 * k, 0.25 + 1e-3 * k],
        "q": [0.0, 0.0, math.sin(0.005 * k), math.cos(0.005 * k)],
    }


def as_dict(tf) -> dict:
    """An rclpy or rosbags geometry_msgs/TransformStamped as expected_transform's dict."""
    t, q = tf.transform.translation, tf.transform.rotation
    return {
        "parent": tf.header.frame_id,
        "child": tf.child_frame_id,
        "stamp": [tf.header.stamp.sec, tf.header.stamp.nanosec],
        "t": [t.x, t.y, t.z],
        "q": [q.x, q.y, q.z, q.w],
    }


# -- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory) -> dict:
    """A robot_state_publisher-shaped publisher process and a subscriber process that joins
    LATE_JOIN_S after /tf_static was published; the subscriber's JSON report."""
    logs = tmp_path_factory.mktemp("ros_log")
    env = ros_isolated_env(logs)
    cmd = [sys.executable, "-m", "tests.test_tf2_msgs"]
    pub = subprocess.Popen(
        [*cmd, "publish", "30"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert pub.stdout.readline().strip() == "static published"
        time.sleep(LATE_JOIN_S)
        sub = subprocess.run(
            [*cmd, "subscribe", "20"], cwd=REPO, env=env, capture_output=True, text=True
        )
    finally:
        pub.terminate()
        pub.wait(timeout=10)
    assert sub.returncode == 0, sub.stderr[-3000:]
    return json.loads(sub.stdout.strip().splitlines()[-1])


@pytest.mark.ros
def test_tf_and_late_joined_tf_static_cross_processes(round_trip):
    # the static transforms were published once, before the subscriber existed
    assert round_trip["static"] == [expected_transform(-1), expected_transform(-2)]
    tf = round_trip["tf"]
    assert len(tf) >= N_TF
    ks = [d["stamp"][1] // 1_000_000 for d in tf]
    assert ks == list(range(ks[0], ks[0] + len(ks)))  # reliable: none lost, in order
    assert tf == [expected_transform(k) for k in ks]  # every float bit-exact
    pubs = round_trip["publishers"]
    assert [(p["reliability"], p["durability"]) for p in pubs["/tf"]] == [("RELIABLE", "VOLATILE")]
    assert [(p["reliability"], p["durability"]) for p in pubs["/tf_static"]] == [
        ("RELIABLE", "TRANSIENT_LOCAL")
    ]


@pytest.mark.ros
def test_the_type_is_the_real_tf2_msgs_tfmessage(round_trip):
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    want = store.hash_rihs01(TYPE)
    assert want.startswith("RIHS01_")
    for topic in ("/tf", "/tf_static"):
        (pub,) = round_trip["publishers"][topic]
        assert pub["type"] == TYPE
        assert pub["hash"] == want, topic  # as the remote publisher announced it
    # rclpy's CDR bytes decode with rosbags' independent definition to the same transforms
    assert round_trip["raw_tf"]
    for raw in round_trip["raw_tf"]:
        msg = store.deserialize_cdr(bytes.fromhex(raw), TYPE)
        (tf,) = msg.transforms
        assert as_dict(tf) == expected_transform(tf.header.stamp.nanosec // 1_000_000)


def test_the_imported_tf2_msgs_is_the_environments_when_it_has_one():
    """Without a ROS install's tf2_msgs the bundled build is imported; with one, never."""
    import tf2_msgs
    from tf2_msgs.msg import TFMessage

    setup = load_setup()
    folder = Path(tf2_msgs.__file__).parent
    ament = os.environ.get("AMENT_PREFIX_PATH", "")
    provider = setup.provided_by_environment("tf2_msgs", ament, sys.path)
    assert (folder / setup.BUNDLED_MARKER).exists() == (provider == ""), (folder, provider)
    assert TFMessage.get_fields_and_field_types() == {
        "transforms": "sequence<geometry_msgs/TransformStamped>"
    }


def test_a_ros_prefix_with_tf2_msgs_builds_nothing_and_says_so(tmp_path, capsys):
    setup = load_setup()
    ros = tmp_path / "opt_ros"
    (ros / "share" / "tf2_msgs").mkdir(parents=True)  # what an ament install of tf2_msgs has
    ament = os.pathsep.join([str(tmp_path / "other"), str(ros)])
    assert str(ros) in setup.provided_by_environment("tf2_msgs", ament, [])
    dest = tmp_path / "site" / "tf2_msgs"
    dest.mkdir(parents=True)
    (dest / setup.BUNDLED_MARKER).write_text("")  # a copy an earlier build shipped
    assert (
        setup.ship_interface("tf2_msgs", dest, env={"AMENT_PREFIX_PATH": ament}, path=[]) is False
    )
    assert not dest.exists()  # the stale bundled copy is gone: the ROS install's is used
    err = capsys.readouterr().err
    assert f"tf2_msgs is provided by the ROS prefix {ros}" in err and "not built" in err


def test_an_importable_ros_tf2_msgs_counts_but_a_bundled_copy_does_not(tmp_path):
    setup = load_setup()
    site = tmp_path / "site"
    (site / "tf2_msgs").mkdir(parents=True)
    (site / "tf2_msgs" / "__init__.py").write_text("")
    assert str(site / "tf2_msgs") in setup.provided_by_environment("tf2_msgs", "", [str(site)])
    (site / "tf2_msgs" / setup.BUNDLED_MARKER).write_text("")
    assert setup.provided_by_environment("tf2_msgs", "", [str(site)]) == ""
    assert setup.provided_by_environment("tf2_msgs", "", []) == ""


def test_without_tf2_msgs_the_build_ships_a_loadable_package(tmp_path, capsys):
    setup = load_setup()
    dest = tmp_path / "site" / "tf2_msgs"
    assert setup.ship_interface("tf2_msgs", dest, env={}, path=[]) is True
    assert "built the bundled tf2_msgs" in capsys.readouterr().err
    assert (dest / setup.BUNDLED_MARKER).is_file()
    assert (dest / "msg" / "_tf_message.py").is_file()
    assert (dest / "_lib" / "libtf2_msgs__rosidl_typesupport_fastrtps_c.so").is_file()
    # a fresh process loads it from there (its _lib preloaded) and serialises a message
    probe = (
        "import os, tf2_msgs; from tf2_msgs.msg import TFMessage\n"
        "from rclpy.serialization import serialize_message\n"
        "print(tf2_msgs.__file__, len(serialize_message(TFMessage())),"
        " os.environ['LD_LIBRARY_PATH'].split(os.pathsep)[0])"
    )
    env = dict(os.environ, PYTHONPATH=str(dest.parent))
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == [str(dest / "__init__.py"), "8", str(dest / "_lib")]


def test_the_launch_stacks_node_environment_has_tf2_msgs(tmp_path):
    """What `ros2 launch` of a colcon-style install gives its node processes (the stand-in for
    a ROS install when there is none) imports TFMessage from that ROS prefix."""
    reason = launch_stack.unavailable()
    if reason:
        pytest.skip(f"launch stack not available: {reason}")
    stack = launch_stack.ensure()
    env = stack.env(ros_isolated_env(tmp_path), tmp_path / "install")
    probe = "import tf2_msgs; from tf2_msgs.msg import TFMessage; print(tf2_msgs.__file__)"
    res = subprocess.run(  # run outside the repository, as a node script is
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    where = Path(res.stdout.strip())
    if stack.kind == "vendored":
        assert where == launch_stack.site_packages(stack.prefixes[0]) / "tf2_msgs/__init__.py"
    assert not (where.parent / load_setup().BUNDLED_MARKER).exists()


# -- helper processes ------------------------------------------------------------------------


def _qos():
    """(/tf, /tf_static) QoS of robot_state_publisher and tf2_ros's listener."""
    from rclpy.qos import QoSDurabilityPolicy as D
    from rclpy.qos import QoSProfile
    from rclpy.qos import QoSReliabilityPolicy as R

    tf = QoSProfile(depth=100, reliability=R.RELIABLE, durability=D.VOLATILE)
    static = QoSProfile(depth=1, reliability=R.RELIABLE, durability=D.TRANSIENT_LOCAL)
    return tf, static


def _tf_message(ks):
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    msg = TFMessage()
    for k in ks:
        e = expected_transform(k)
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = e["parent"], e["child"]
        tf.header.stamp.sec, tf.header.stamp.nanosec = e["stamp"]
        v, q = tf.transform.translation, tf.transform.rotation
        v.x, v.y, v.z = e["t"]
        q.x, q.y, q.z, q.w = e["q"]
        msg.transforms.append(tf)
    return msg


def _publish(seconds: float) -> None:
    import rclpy

    rclpy.init()
    node = rclpy.create_node("tf_test_publisher")
    tf_qos, static_qos = _qos()
    static_pub = node.create_publisher(type(_tf_message([])), "/tf_static", static_qos)
    tf_pub = node.create_publisher(type(_tf_message([])), "/tf", tf_qos)
    static_pub.publish(_tf_message([-1, -2]))  # once, latched, as robot_state_publisher does
    print("static published", flush=True)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        tf_pub.publish(_tf_message([k]))
        k += 1
        rclpy.spin_once(node, timeout_sec=0.02)
    rclpy.try_shutdown()


def _subscribe(seconds: float) -> None:
    import rclpy
    import tf2_msgs
    from tf2_msgs.msg import TFMessage

    rclpy.init()
    node = rclpy.create_node("tf_test_subscriber")
    tf_qos, static_qos = _qos()
    got: dict = {"static": [], "tf": [], "raw_tf": []}
    node.create_subscription(
        TFMessage,
        "/tf_static",
        lambda m: got["static"].extend(map(as_dict, m.transforms)),
        static_qos,
    )
    node.create_subscription(
        TFMessage, "/tf", lambda m: got["tf"].extend(map(as_dict, m.transforms)), tf_qos
    )
    # the bytes on the wire, as rclpy received them (CDR with its 4-byte encapsulation header)
    node.create_subscription(
        TFMessage, "/tf", lambda b: got["raw_tf"].append(b.hex()), tf_qos, raw=True
    )
    end = time.monotonic() + seconds
    while time.monotonic() < end and (
        len(got["static"]) < len(STATIC) or len(got["tf"]) < N_TF or not got["raw_tf"]
    ):
        rclpy.spin_once(node, timeout_sec=0.05)
    pubs = {
        topic: [
            {
                "hash": str(i.topic_type_hash),
                "type": i.topic_type,
                "durability": i.qos_profile.durability.name,
                "reliability": i.qos_profile.reliability.name,
            }
            for i in node.get_publishers_info_by_topic(topic)
        ]
        for topic in ("/tf", "/tf_static")
    }
    got.update(publishers=pubs, tf2_msgs_file=tf2_msgs.__file__)
    print(json.dumps(got), flush=True)
    rclpy.try_shutdown()


if __name__ == "__main__":
    {"publish": _publish, "subscribe": _subscribe}[sys.argv[1]](float(sys.argv[2]))
