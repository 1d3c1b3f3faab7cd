"""Rectification of raw camera images (OpenCV), as image_proc's rectify does.

A CameraInfo with a non-zero distortion `d` describes a raw image: pixels are remapped to the
ideal pinhole camera of its projection matrix P (`P[:3, :3]`; K when P is unset) and rotation
R (identity when unset). The maps are computed once per CameraInfo (`Rectifier.for_info`
caches by the calibration's values) and cost one `cv2.remap` per frame. Models: plumb_bob and
rational_polynomial (cv2.initUndistortRectifyMap), equidistant (cv2.fisheye).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np


@dataclass(frozen=True)
class Calibration:
    """The fields of a sensor_msgs/CameraInfo that rectification needs (row-major)."""

    width: int
    height: int
    model: str
    d: tuple[float, ...]
    k: tuple[float, ...]  # 9
    r: tuple[float, ...]  # 9 (all zero: identity)
    p: tuple[float, ...]  # 12 (all zero: use K)

    @property
    def K(self) -> np.ndarray:
        return np.asarray(self.k, np.float64).reshape(3, 3)

    @property
    def R(self) -> np.ndarray:
        R = np.asarray(self.r, np.float64).reshape(3, 3)
        return R if R.any() else np.eye(3)

    @property
    def new_K(self) -> np.ndarray:
        """Intrinsics of the rectified image: P[:3, :3] (K when P is all zero)."""
        P = np.asarray(self.p, np.float64).reshape(3, 4)
        return P[:, :3].copy() if P.any() else self.K


class Rectifier:
    """Remaps raw images of one calibration to its rectified pinhole image."""

    _cache: ClassVar[dict[Calibration, Rectifier]] = {}

    def __init__(self, cal: Calibration):
        self.cal = cal
        size = (cal.width, cal.height)
        d = np.asarray(cal.d, np.float64)
        if cal.model == "equidistant":
            self.map1, self.map2 = cv2.fisheye.initUndistortRectifyMap(
                cal.K, d, cal.R, cal.new_K, size, cv2.CV_16SC2
            )
        else:
            self.map1, self.map2 = cv2.initUndistortRectifyMap(
                cal.K, d, cal.R, cal.new_K, size, cv2.CV_16SC2
            )

    @classmethod
    def for_info(cls, cal: Calibration) -> Rectifier:
        """The rectifier of `cal`, built on first use (maps: ~10 ms at 640x480)."""
        r = cls._cache.get(cal)
        if r is None:
            cls._cache.clear()  # one camera per node: keep only the current calibration
            r = cls._cache[cal] = cls(cal)
        return r

    def rectify(self, img: np.ndarray) -> np.ndarray:
        """(H, W, C) uint8 raw -> (H, W, C) uint8 rectified (bilinear)."""
        if img.shape[:2] != (self.cal.height, self.cal.width):
            raise ValueError(
                f"image is {img.shape[1]}x{img.shape[0]}, the calibration "
                f"{self.cal.width}x{self.cal.height}"
            )
        return cv2.remap(img, self.map1, self.map2, cv2.INTER_LINEAR)

    @property
    def K(self) -> np.ndarray:
        """Intrinsics of the rectified image (pixels at the calibration's size)."""
        return self.cal.new_K
