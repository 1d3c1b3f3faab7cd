"""Layering: para_ros never imports para_training; para_ros.data needs neither torch nor rclpy."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.ros_helpers.env import REPO

GENERATED = ("para_ros/msg", "para_ros/_lib")


def _imports(path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_para_ros_never_imports_para_training():
    files = [
        p
        for p in sorted((REPO / "para_ros").rglob("*.py"))
        if not any(str(p.relative_to(REPO)).startswith(g) for g in GENERATED)
    ]
    assert len(files) > 30  # the scan sees the package
    bad = [
        f"{p.relative_to(REPO)}:{line} imports {name}"
        for p in files
        for line, name in _imports(p)
        if name.split(".")[0] == "para_training"
    ]
    assert bad == []


def test_data_package_is_pure():
    modules = sorted(
        f"para_ros.data.{p.stem}"
        for p in (REPO / "para_ros" / "data").glob("*.py")
        if p.stem != "__init__"
    )
    assert "para_ros.data.episode" in modules and "para_ros.data.rosbag_io" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('rclpy', 'torch', 'para_training'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
