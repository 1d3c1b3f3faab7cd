"""The package files: package.xml, messages, and the CMake build colcon runs (ament_cmake).

colcon's ament_cmake task is `cmake` configure + build + install of CMakeLists.txt with the
ROS prefix on AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH; this test runs exactly that against the
kilted wheels in the venv (no apt ROS here) and checks what a workspace install would hold.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.ros_helpers.env import REPO


def test_package_xml_is_format3_ament_cmake():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "para_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    assert {"rosidl_default_generators", "rclpy", "sensor_msgs", "geometry_msgs"} <= deps
    assert "tf2_msgs" in deps  # /tf and /tf_static


def test_bundled_tf2_msgs_is_the_real_interface_and_never_built_by_colcon():
    pkg = REPO / "interfaces" / "tf2_msgs"
    assert (pkg / "COLCON_IGNORE").is_file()  # a ROS workspace keeps the system's tf2_msgs
    root = ET.parse(pkg / "package.xml").getroot()
    assert root.findtext("name") == "tf2_msgs"  # the DDS type name comes from these names
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    assert sorted(p.name for p in (pkg / "msg").iterdir()) == ["TFMessage.msg"]
    lines = (pkg / "msg" / "TFMessage.msg").read_text().splitlines()
    code = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert code == ["geometry_msgs/TransformStamped[] transforms"]
    # what an editable install generates stays out of git
    res = subprocess.run(
        ["git", "check-ignore", "tf2_msgs/__init__.py", "tf2_msgs/_lib/x.so"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert res.stdout.split() == ["tf2_msgs/__init__.py", "tf2_msgs/_lib/x.so"]


@pytest.mark.parametrize("name", ["PolicyAction.msg", "EpisodeStatus.msg"])
def test_every_message_field_is_commented(name):
    lines = (REPO / "msg" / name).read_text().splitlines()
    for k, line in enumerate(lines):
        code = line.split("#")[0].strip()
        if not code or "=" in code:  # blank, comment, or a constant with its own comment
            continue
        above = lines[k - 1].strip() if k else ""
        # a field is documented by a comment on its line or in the comment block above it
        j = k - 1
        while j >= 0 and lines[j].strip() and not lines[j].strip().startswith("#"):
            j -= 1  # fields grouped under one comment
        assert (
            "#" in line or above.startswith("#") or (j >= 0 and lines[j].strip().startswith("#"))
        ), f"{name}:{k + 1} `{code}` has no comment"


def test_generated_messages_match_msg_files():
    from para_ros.msg import EpisodeStatus, PolicyAction

    fields = PolicyAction.get_fields_and_field_types()
    assert fields["poses"] == "sequence<geometry_msgs/Pose>"
    assert fields["confidence"] == "sequence<float>"
    assert EpisodeStatus.PLACE == 1 and EpisodeStatus.GRASP == 2 and EpisodeStatus.MISS == 3


def test_cmake_build_installs_a_ros_package(tmp_path):
    from para_ros.deploy_plan import executables
    from tests.ros_helpers.launch_stack import install_package

    install = install_package(tmp_path)  # ws/src/para_ros -> ws/install, as colcon does
    share = install / "share" / "para_ros"
    assert (share / "package.xml").is_file()
    assert (share / "msg" / "PolicyAction.msg").is_file()
    assert (install / "share/ament_index/resource_index/packages/para_ros").is_file()
    site = next((install / "lib").glob("python3*/site-packages"))
    assert (site / "para_ros" / "msg" / "_policy_action.py").is_file()
    assert (site / "para_ros" / "core" / "geometry.py").is_file()  # our sources, same package
    init = (site / "para_ros" / "__init__.py").read_text()
    assert re.search(r"__version__", init), "our __init__.py must win over the generated one"
    assert (site / "para_training" / "__init__.py").is_file()
    assert list((install / "lib").glob("libpara_ros__rosidl_typesupport_fastrtps_c.so"))
    for name in executables():  # every node, where ros2 run / launch_ros look
        exe = install / "lib" / "para_ros" / name
        assert exe.is_file() and os.access(exe, os.X_OK), name
    assert (share / "launch" / "deploy.launch.py").is_file()
    assert (share / "config" / "deploy.yaml").is_file()
    # the shipped default model, where deploy.launch.py's `model` default points
    assert (share / "models" / "para_libero_spatial_t0" / "model.onnx").is_file()
