"""Make the message libraries of a pip install loadable (imported by the generated para_ros.msg).

pip installs ship the generated typesupport libraries in `para_ros/_lib/` (see setup.py), a
folder that is on no loader path. rosidl_typesupport_c dlopens
`libpara_ros__rosidl_typesupport_fastrtps_c.so` by bare name, which the dynamic loader resolves
with the LD_LIBRARY_PATH it read at process start; changing the variable later does not help
this process. A library whose soname is already loaded is found by bare name, so preloading
them with RTLD_GLOBAL fixes this process, and prepending the folder to LD_LIBRARY_PATH fixes
child processes (RECIPES pitfall 4). Colcon installs have no `_lib/`: nothing to do.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

LIB_DIR = Path(__file__).resolve().parent / "_lib"
_loaded: list[ctypes.CDLL] = []  # keep handles alive for the life of the process


def preload() -> None:
    """Preload `_lib/libpara_ros__*.so` once; no-op when the folder does not exist."""
    if _loaded or not LIB_DIR.is_dir():
        return
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    if str(LIB_DIR) not in paths:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([str(LIB_DIR), *[p for p in paths if p]])
    # generator_c first: every other library links against it (their RPATH also finds it).
    libs = sorted(LIB_DIR.glob("libpara_ros__*.so"), key=lambda p: "generator_c" not in p.name)
    for lib in libs:
        _loaded.append(ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL))
