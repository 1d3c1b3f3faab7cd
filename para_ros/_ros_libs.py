"""Make the interface libraries of a pip install loadable (imported by the generated `msg`
packages that setup.py ships: `para_ros.msg`, and `tf2_msgs.msg` where the build environment
had no tf2_msgs).

pip installs ship each package's generated typesupport libraries in `<package>/_lib/` (see
setup.py), a folder that is on no loader path. rosidl_typesupport_c dlopens
`lib<package>__rosidl_typesupport_fastrtps_c.so` by bare name, which the dynamic loader resolves
with the LD_LIBRARY_PATH it read at process start; changing the variable later does not help
this process. A library whose soname is already loaded is found by bare name, so preloading
them with RTLD_GLOBAL fixes this process, and prepending the folder to LD_LIBRARY_PATH fixes
child processes. Colcon and ROS installs have no `_lib/`: nothing to do.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

LIB_FOLDER = "_lib"  # <package>/_lib/: where setup.py puts the generated libraries
_loaded: dict[str, list[ctypes.CDLL]] = {}  # handles kept alive for the life of the process


def lib_dir(package: str) -> Path:
    """`<folder of the importable top-level package>/_lib` (it may not exist).

    Raises ModuleNotFoundError when `package` is not importable as a regular package.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"preload: {package!r} is not an importable regular package")
    return Path(spec.origin).resolve().parent / LIB_FOLDER


def preload(package: str = "para_ros") -> None:
    """Preload `<package>/_lib/lib<package>__*.so` once per package and put the folder first on
    LD_LIBRARY_PATH (for child processes); a no-op when the folder does not exist."""
    if package in _loaded:
        return
    folder = lib_dir(package)
    if not folder.is_dir():
        _loaded[package] = []
        return
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    if str(folder) not in paths:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([str(folder), *[p for p in paths if p]])
    # generator_c first: every other library links against it (their RPATH also finds it).
    libs = sorted(folder.glob(f"lib{package}__*.so"), key=lambda p: "generator_c" not in p.name)
    _loaded[package] = [ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL) for lib in libs]
