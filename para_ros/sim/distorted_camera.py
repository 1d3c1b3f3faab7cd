"""A RealSense-like colour camera made from a pinhole render: the plumb_bob (Brown-Conrady)
distortion of its CameraInfo really applied to the image, and K, R, P as realsense2_camera
fills them. No ROS.

The simulator renders an ideal pinhole image with intrinsics K. The published (raw) image is
what a lens with distortion `d` = (k1, k2, p1, p2, k3) would have recorded: the raw pixel
(u, v) shows the scene point whose pinhole pixel is `cv2.undistortPoints((u, v), K, d, P=K)`.
So `cv2.projectPoints(X, rvec, tvec, K, d)` gives where a 3D point X appears in the raw image,
and undistorting the raw image with the CameraInfo (image_proc, `cv2.initUndistortRectifyMap`
with P = K) gives back the pinhole render up to interpolation and compression error.
Pixel coordinates follow OpenCV (the centre of the top-left pixel is (0, 0)).
"""

from __future__ import annotations

import cv2
import numpy as np

# (k1, k2, p1, p2, k3): the magnitude a RealSense D4xx colour sensor's factory calibration
# reports (mild barrel distortion, tangential terms below 1e-3)
REALSENSE_PLUMB_BOB = (-0.0553, 0.0663, -0.000693, 0.000398, -0.0213)
# refinement of cv2.undistortPointsIter: iterations, and the reprojection error to stop at
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


class DistortedCamera:
    """Distorts pinhole renders of one camera.

    K: (3, 3) pinhole intrinsics of the render (pixels); size_hw: (H, W) of the render;
    d: the 5 plumb_bob coefficients (k1, k2, p1, p2, k3). Raises ValueError for a K that is
    not 3 x 3 with positive focal lengths, or a `d` that is not 5 finite numbers."""

    def __init__(self, K: np.ndarray, size_hw: tuple[int, int], d=REALSENSE_PLUMB_BOB):
        K = np.asarray(K, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64).reshape(-1)
        if K.shape != (3, 3) or not (K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError(f"K must be a 3x3 camera matrix with fx, fy > 0, got {K.tolist()}")
        if d.shape != (5,) or not np.isfinite(d).all():
            raise ValueError(
                f"plumb_bob distortion needs 5 finite coefficients (k1, k2, p1, p2, k3), "
                f"got {d.tolist()}"
            )
        self.K, self.d = K, d
        self.height, self.width = int(size_hw[0]), int(size_hw[1])
        u, v = np.meshgrid(np.arange(self.width), np.arange(self.height))
        raw = np.stack([u, v], axis=-1).reshape(-1, 1, 2).astype(np.float64)
        src = cv2.undistortPointsIter(raw, K, d, None, K, _UNDISTORT_CRITERIA)
        src = src.reshape(self.height, self.width, 2)
        # where each raw pixel comes from in the pinhole render
        self.map_x = np.ascontiguousarray(src[..., 0], dtype=np.float32)
        self.map_y = np.ascontiguousarray(src[..., 1], dtype=np.float32)

    def distort(self, pinhole: np.ndarray) -> np.ndarray:
        """(H, W, C) uint8 pinhole render -> (H, W, C) uint8 raw image (bilinear; the few
        raw pixels whose source lies outside the render repeat its border)."""
        if pinhole.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"render is {pinhole.shape[1]}x{pinhole.shape[0]}, the camera "
                f"{self.width}x{self.height}"
            )
        return cv2.remap(
            pinhole, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def camera_info(self) -> dict:
        """sensor_msgs/CameraInfo fields as realsense2_camera fills them: plumb_bob, `d`,
        K, R = identity, P = [K | 0] (a monocular camera), row-major lists."""
        return {
            "width": self.width,
            "height": self.height,
            "distortion_model": "plumb_bob",
            "d": self.d.tolist(),
            "k": self.K.reshape(-1).tolist(),
            "r": np.eye(3).reshape(-1).tolist(),
            "p": np.hstack([self.K, np.zeros((3, 1))]).reshape(-1).tolist(),
        }
