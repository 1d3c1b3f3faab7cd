"""The real ROS 2 launch stack for tests: `ros2 launch`, `ros2 run`, `ros2 param` and a
colcon-style install of this package, on a machine with only the PyPI ROS 2 wheels.

Where a real ROS 2 install is active (`ros2` on PATH and `launch_ros` importable), it is used
as it is. Otherwise the unmodified upstream archives in `../shared/vendor/ros2-launch/` (test
tooling, never copied into the repository) are installed into a cached prefix outside the
repository (RECIPES "Real ros2 launch"):

    ~/.cache/para_ros/ros2-launch-<key>/prefix   launch, launch_ros, ros2cli (+ osrf-pycommon,
                                                  argcomplete, psutil from PyPI)
    ~/.cache/para_ros/ros2-launch-<key>/interfaces  composition_interfaces, built with CMake
                                                  against the venv like our own messages, and
                                                  tf2_msgs from interfaces/tf2_msgs: the ROS
                                                  install's tf2_msgs that package.xml names

`key` hashes the archives, interfaces/tf2_msgs, the interpreter and the include-path fix, so a
change rebuilds.
`unavailable()` says why neither exists (the launch tests then report that reason).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.ros_helpers.env import REPO

VENDOR = Path(os.environ.get("PARA_ROS2_LAUNCH_VENDOR", REPO.parent / "shared/vendor/ros2-launch"))
ARCHIVES = ("launch", "launch_ros", "ros2cli", "rcl_interfaces")
PACKAGES = (
    "launch/launch",
    "launch/launch_xml",
    "launch/launch_yaml",
    "launch_ros/launch_ros",
    "launch_ros/ros2launch",
    "ros2cli/ros2cli",
    "ros2cli/ros2pkg",
    "ros2cli/ros2node",
    "ros2cli/ros2param",
    "ros2cli/ros2run",
)
PYPI = ("osrf-pycommon", "argcomplete", "psutil")
FIX_INCLUDES = REPO / "cmake" / "fix_wheel_includes.cmake"
TF2_MSGS = REPO / "interfaces" / "tf2_msgs"  # stands in for a ROS install's tf2_msgs
CACHE = Path(os.environ.get("PARA_ROS_TEST_CACHE", Path.home() / ".cache" / "para_ros"))
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class LaunchStack:
    """How to run the ROS 2 command line: `kind` is "ros-install" or "vendored"."""

    kind: str
    prefixes: tuple[Path, ...]  # install prefixes to put on AMENT_PREFIX_PATH etc.

    def env(self, base: dict[str, str], install: Path) -> dict[str, str]:
        """`base` plus what `source install/setup.bash` would set for `install`."""
        env = dict(base)
        venv = Path(sys.prefix)
        prefixes = [install, *self.prefixes, venv]
        site = [p / "lib" / PYVER / "site-packages" for p in prefixes]
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(map(str, prefixes))
        env["PYTHONPATH"] = os.pathsep.join([*map(str, site), env.get("PYTHONPATH", "")])
        libs = [str(p / "lib") for p in prefixes]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")])
        bins = [str(p / "bin") for p in self.prefixes] + [str(venv / "bin")]
        env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
        return env


def _ros_install() -> LaunchStack | None:
    ros2 = shutil.which("ros2")
    if ros2 and os.environ.get("AMENT_PREFIX_PATH"):
        probe = subprocess.run(
            [sys.executable, "-c", "import launch_ros, ros2launch"], capture_output=True
        )
        if probe.returncode == 0:
            return LaunchStack("ros-install", ())
    return None


def unavailable() -> str:
    """'' when a launch stack can be had, else why not."""
    if _ros_install() is not None:
        return ""
    missing = [a for a in ARCHIVES if not (VENDOR / f"{a}.tar.gz").is_file()]
    if missing:
        return (
            f"no ROS 2 install (`ros2` with launch_ros) and no vendored launch archives "
            f"{missing} under {VENDOR}"
        )
    return ""


def _key() -> str:
    h = hashlib.sha256()
    for a in ARCHIVES:
        h.update((VENDOR / f"{a}.tar.gz").read_bytes())
    h.update(FIX_INCLUDES.read_bytes())
    for f in [
        TF2_MSGS / "package.xml",
        TF2_MSGS / "CMakeLists.txt",
        *sorted(TF2_MSGS.glob("msg/*")),
    ]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(sys.prefix.encode() + sys.version.encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


def cmake_env() -> dict[str, str]:
    """The environment our message build uses against the wheels (setup.py)."""
    venv = Path(sys.prefix)
    env = dict(os.environ)
    env.update(AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv))
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(venv / "lib"), env.get("LD_LIBRARY_PATH", "")])
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def cmake_install(src: Path, build: Path, install: Path, *extra: str) -> None:
    """configure + build + install one ament_cmake package, as colcon's ament_cmake task does
    (with the wheels' include-path fix, RECIPES pitfall 3)."""
    cmake = shutil.which("cmake", path=str(Path(sys.prefix) / "bin")) or shutil.which("cmake")
    env = cmake_env()
    configure = [
        cmake,
        "-S",
        str(src),
        "-B",
        str(build),
        f"-DCMAKE_INSTALL_PREFIX={install}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DBUILD_TESTING=OFF",
        *extra,
    ]
    _run(configure, env, f"cmake configure of {src.name}")
    _run([cmake, "--build", str(build), "-j", "2"], env, f"cmake build of {src.name}")
    _run([cmake, "--install", str(build)], env, f"cmake install of {src.name}")


def _build_vendored(dest: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="ros2_launch_src_", dir=dest.parent))
    try:
        for a in ARCHIVES:
            with tarfile.open(VENDOR / f"{a}.tar.gz") as tar:
                tar.extractall(work / a, filter="data")
        prefix, interfaces = work / "out" / "prefix", work / "out" / "interfaces"
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run(
            [*pip, "--no-deps", "--no-build-isolation", "--prefix", str(prefix)]
            + [str(work / p) for p in PACKAGES],
            dict(os.environ),
            "pip install of the vendored launch packages",
        )
        _run([*pip, "--prefix", str(prefix), *PYPI], dict(os.environ), f"pip install {PYPI}")
        cmake_install(
            work / "rcl_interfaces" / "composition_interfaces",
            work / "build_ci",
            interfaces,
            f"-DCMAKE_PROJECT_INCLUDE={FIX_INCLUDES}",
        )
        # the node processes' tf2_msgs: a ROS install has it; here it joins the same prefix
        cmake_install(
            TF2_MSGS, work / "build_tf2", interfaces, f"-DCMAKE_PROJECT_INCLUDE={FIX_INCLUDES}"
        )
        (work / "out").rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure() -> LaunchStack:
    """The launch stack (a ROS install, or the vendored one, built once into the cache)."""
    stack = _ros_install()
    if stack is not None:
        return stack
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    dest = CACHE / f"ros2-launch-{_key()}"
    with open(CACHE / "ros2-launch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs build it once
        if not dest.is_dir():
            _build_vendored(dest)
    return LaunchStack("vendored", (dest / "interfaces", dest / "prefix"))


def install_package(ws: Path) -> Path:
    """A colcon-style install of this package (ws/src/para_ros -> ws/install); returns the
    install prefix. On a ROS install this is what `colcon build` runs for ament_cmake."""
    src = ws / "src" / "para_ros"
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "_lib", "msg", "*.so")
    for name in ("para_ros", "para_training", "launch", "config", "bin", "models", "cmake"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    shutil.copytree(REPO / "msg", src / "msg")
    for name in ("CMakeLists.txt", "package.xml"):
        shutil.copy2(REPO / name, src / name)
    install = ws / "install"
    extra = [] if _ros_install() else ["-DPARA_ROS_FIX_WHEEL_INCLUDES=ON"]
    cmake_install(src, ws / "build", install, *extra)
    return install


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / PYVER / "site-packages"
