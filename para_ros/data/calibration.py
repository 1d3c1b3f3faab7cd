"""Camera calibration sidecar: one JSON file for formats that store no calibration (LeRobot).

    {
      "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],      pinhole intrinsics, pixels
      "T_world_cam": [[...4 rows of 4...]],             camera -> world, OpenCV camera axes
                                                        (x right, y down, z forward), metres
      "image_size": [H, W],                             optional: the size K was measured at
                                                        (default: the images' own size)
      "camera": "image", "source": "..."                optional, free text
    }

When `image_size` differs from the images, K is scaled (fx, cx by W'/W; fy, cy by H'/H).
Loaded with json (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from para_ros.core.geometry import scale_intrinsics
from para_ros.data.episode import EpisodeError

EXAMPLE = '{"K": [[fx,0,cx],[0,fy,cy],[0,0,1]], "T_world_cam": [[4x4, camera -> world]]}'


def load_calibration(
    path: str | Path, image_hw: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) at `image_hw`, T_world_cam (4, 4)); EpisodeError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"{path}: calibration file not found (expected JSON {EXAMPLE})")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EpisodeError(f"{path}: not JSON ({exc}); expected {EXAMPLE}") from exc
    if not isinstance(d, dict):
        raise EpisodeError(f"{path}: expected a JSON object {EXAMPLE}")
    out = []
    for key, shape in (("K", (3, 3)), ("T_world_cam", (4, 4))):
        if key not in d:
            raise EpisodeError(f"{path}: missing key {key!r}; expected {EXAMPLE}")
        try:
            a = np.asarray(d[key], dtype=np.float64)
        except (TypeError, ValueError):
            a = np.zeros(0)
        if a.shape != shape or not np.isfinite(a).all():
            raise EpisodeError(f"{path}: {key!r} must be a finite {shape[0]}x{shape[1]} matrix")
        out.append(a)
    K, T = out
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise EpisodeError(f"{path}: T_world_cam's rotation is not a proper rotation matrix")
    if "image_size" in d and image_hw is not None:
        hw = tuple(int(x) for x in d["image_size"])
        if hw != tuple(image_hw):
            K = scale_intrinsics(K, hw, tuple(image_hw))
    return K, T
