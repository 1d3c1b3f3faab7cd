"""Image adapters shared by training and deployment: encodings and resize with K rescale.

Training resizes recorded frames with exactly these functions, so the deployed node feeds the
model pixels prepared the same way. Images are uint8 (H, W, C) numpy arrays, row-major, top
row first (upright).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from para_ros.core.geometry import scale_intrinsics

# ROS sensor_msgs/Image encodings accepted as camera input -> (channels, RGB channel order).
ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
}


class ImageFormatError(ValueError):
    """An image has an encoding, size or layout the model cannot take."""


def to_rgb(data: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, C) uint8 in `encoding` -> (H, W, 3) uint8 RGB (a view when already rgb8)."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; expected one of {sorted(ENCODINGS)}"
        )
    channels, order = ENCODINGS[encoding]
    if data.dtype != np.uint8 or data.ndim != 3 or data.shape[2] != channels:
        raise ImageFormatError(
            f"{encoding} image must be uint8 (H, W, {channels}), got {data.dtype} {data.shape}"
        )
    if order == (0, 1, 2) and channels == 3:
        return data
    return np.ascontiguousarray(data[:, :, list(order)])


def resize_rgb(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of (H, W, 3) uint8 to `hw` = (height, width)."""
    if img.shape[:2] == tuple(hw):
        return img
    out = Image.fromarray(img).resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(out)


def prepare(img: np.ndarray, K: np.ndarray, hw: tuple[int, int]):
    """Resize an upright RGB image to the model input (H, W) and return (image, K at that size).

    Anisotropic resizes are exact for the geometry: fx, cx scale with W and fy, cy with H.
    """
    raw_hw = img.shape[:2]
    return resize_rgb(img, hw), scale_intrinsics(K, raw_hw, hw)


# image_transport "compressed" formats: "<raw encoding>; <jpeg|png> compressed <encoding>"
# (e.g. "rgb8; jpeg compressed bgr8"), or just "jpeg" / "png" from older drivers.
COMPRESSED_CODECS = ("jpeg", "png")


def decode_compressed(data: bytes, fmt: str) -> np.ndarray:
    """A sensor_msgs/CompressedImage payload (JPEG/PNG) -> (H, W, 3) uint8 RGB (OpenCV).

    Colour images only: the raw encoding named in `fmt` must be one of ENCODINGS (or absent).
    The compressed data is BGR as image_transport writes it ("... compressed bgr8"), unless
    the format says "compressed rgb8" (drivers that compress RGB data as is); an alpha
    channel is dropped. ImageFormatError names the format and what was expected."""
    import cv2

    raw, _, rest = fmt.partition(";")
    raw, rest = raw.strip().lower(), rest.strip().lower()
    codec = (rest.split()[0] if rest else raw) or ""
    if codec not in COMPRESSED_CODECS:
        raise ImageFormatError(
            f"unsupported compressed format {fmt!r}; expected "
            "'<encoding>; jpeg|png compressed <encoding>' or 'jpeg'/'png'"
        )
    if rest and raw not in ENCODINGS:
        raise ImageFormatError(
            f"compressed image of raw encoding {raw!r} ({fmt!r}); expected a colour encoding "
            f"{sorted(ENCODINGS)}"
        )
    if not len(data):
        raise ImageFormatError(f"empty compressed image ({fmt!r})")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageFormatError(f"{codec} data do not decode ({fmt!r}): {exc}") from None
    if img is None:
        raise ImageFormatError(f"{len(data)} bytes do not decode as {codec} ({fmt!r})")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageFormatError(
            f"{codec} image ({fmt!r}) decodes to {img.dtype} {img.shape}; expected 8-bit colour"
        )
    stored_as = rest.split("compressed")[-1].strip() if "compressed" in rest else "bgr8"
    order = [0, 1, 2] if stored_as.startswith("rgb") else [2, 1, 0]
    return np.ascontiguousarray(img[:, :, order])
