"""Where the package's shared files (config/, launch/, msg/, models/) are, in every kind of
install: a colcon/ament install (share/para_ros via the ament index), a wheel
(para_ros/share/), or a source checkout / editable install (the repository root)."""

from __future__ import annotations

import os
from pathlib import Path


def share_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "share", here.parent):
        if (candidate / "config" / "deploy.yaml").is_file():
            return candidate
    if os.environ.get("AMENT_PREFIX_PATH"):
        try:
            from ament_index_python.packages import get_package_share_directory

            return Path(get_package_share_directory("para_ros"))
        except (ImportError, LookupError):
            pass
    raise FileNotFoundError("para_ros share files (config/deploy.yaml) not found")


def config_file(name: str) -> Path:
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path


# The embedded default: PARA trained by this project on libero_spatial task 0 (its card:
# models/para_libero_spatial_t0/MODEL_CARD.md).
DEFAULT_MODEL = "para_libero_spatial_t0"


def model_file(name: str = DEFAULT_MODEL, file: str = "model.onnx") -> Path:
    """A file of a model shipped under models/<name>/ (the default: the task-0 policy)."""
    path = share_dir() / "models" / name / file
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: shipped models are under {share_dir() / 'models'}"
        )
    return path
