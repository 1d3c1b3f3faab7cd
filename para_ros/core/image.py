"""Image adapters shared by training and deployment: camera encodings to RGB, resize with K
rescale.

Training resizes recorded frames with exactly these functions, so the deployed node feeds the
model pixels prepared the same way. Images are uint8 (H, W, C) numpy arrays, row-major, top
row first (upright).

Camera encodings become RGB8 as cv_bridge converts them (`toCvCopy(msg, "rgb8")`), with the
same OpenCV calls: one `cv2.cvtColor` code per encoding (`ENCODINGS`), applied at the
encoding's own bit depth, then 16-bit samples scaled to 8 bits by 255/65535 with rounding
(cv_bridge's `convertTo(..., 255. / 65535.)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from para_ros.core.geometry import scale_intrinsics


@dataclass(frozen=True)
class Encoding:
    """How one sensor_msgs/Image encoding becomes RGB.

    channels: samples per pixel in the message (2 for packed YUV 4:2:2: Y plus U or V);
    bits: 8 or 16 per sample (unsigned); code: the `cv2.cvtColor` code to RGB at that depth,
    None when the samples are RGB already."""

    channels: int
    bits: int
    code: int | None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits == 8 else np.uint16)


def _both_depths(name: str, channels: int, code: int | None) -> dict[str, Encoding]:
    return {f"{name}8": Encoding(channels, 8, code), f"{name}16": Encoding(channels, 16, code)}


# ROS sensor_msgs/Image encodings accepted as camera input, and the cv_bridge conversion of
# each to rgb8:
# - colour: channel order only; an alpha channel is dropped (COLOR_RGBA2RGB, COLOR_BGRA2RGB);
# - mono: COLOR_GRAY2RGB;
# - generic OpenCV types 8UC1/8UC3/8UC4: cv_bridge refuses to convert them to rgb8 (no
#   colour meaning); they are read in OpenCV's own channel order, mono/BGR/BGRA, as
#   cv_bridge's `cvtColorForDisplay` reads them and as `cv2_to_imgmsg(frame)` (passthrough)
#   writes an OpenCV frame;
# - packed YUV 4:2:2, BT.601 video range as OpenCV decodes it: cv_bridge's "yuv422" (bytes
#   U Y0 V Y1) is COLOR_YUV2RGB_UYVY and "yuv422_yuy2" (usb_cam's default, bytes Y0 U Y1 V)
#   COLOR_YUV2RGB_YUY2; "uyvy" and "yuyv" are newer sensor_msgs names of the same layouts;
#   the width must be even;
# - Bayer: ROS names the 2x2 tile from its top-left pixel, OpenCV by the second row's second
#   and third pixels, so bayer_rggb is COLOR_BayerBG2RGB, bayer_bggr COLOR_BayerRG2RGB,
#   bayer_gbrg COLOR_BayerGR2RGB, bayer_grbg COLOR_BayerGB2RGB (OpenCV's bilinear demosaic).
# Refused: depth and other generic types (16UC1, 32FC1, 64FC*, ...), NV12/NV21/NV24 and any
# other name.
ENCODINGS: dict[str, Encoding] = {
    **_both_depths("rgb", 3, None),
    **_both_depths("bgr", 3, cv2.COLOR_BGR2RGB),
    **_both_depths("rgba", 4, cv2.COLOR_RGBA2RGB),
    **_both_depths("bgra", 4, cv2.COLOR_BGRA2RGB),
    **_both_depths("mono", 1, cv2.COLOR_GRAY2RGB),
    "8UC1": Encoding(1, 8, cv2.COLOR_GRAY2RGB),
    "8UC3": Encoding(3, 8, cv2.COLOR_BGR2RGB),
    "8UC4": Encoding(4, 8, cv2.COLOR_BGRA2RGB),
    "uyvy": Encoding(2, 8, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422": Encoding(2, 8, cv2.COLOR_YUV2RGB_UYVY),
    "yuyv": Encoding(2, 8, cv2.COLOR_YUV2RGB_YUY2),
    "yuv422_yuy2": Encoding(2, 8, cv2.COLOR_YUV2RGB_YUY2),
    **_both_depths("bayer_rggb", 1, cv2.COLOR_BayerBG2RGB),
    **_both_depths("bayer_bggr", 1, cv2.COLOR_BayerRG2RGB),
    **_both_depths("bayer_gbrg", 1, cv2.COLOR_BayerGR2RGB),
    **_both_depths("bayer_grbg", 1, cv2.COLOR_BayerGB2RGB),
}

_BAYER_CODES = (
    cv2.COLOR_BayerBG2RGB,
    cv2.COLOR_BayerRG2RGB,
    cv2.COLOR_BayerGR2RGB,
    cv2.COLOR_BayerGB2RGB,
)


class ImageFormatError(ValueError):
    """An image has an encoding, size or layout the model cannot take."""


def encoding_info(name: str) -> Encoding:
    """The `Encoding` of an accepted sensor_msgs/Image encoding name (case-sensitive, as ROS
    names them). ImageFormatError names a refused one and lists the accepted ones."""
    enc = ENCODINGS.get(name)
    if enc is None:
        raise ImageFormatError(
            f"unsupported image encoding {name!r}; expected one of {', '.join(ENCODINGS)}"
        )
    return enc


def to_rgb(data: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, C) or, for one channel, (H, W) samples in `encoding` -> (H, W, 3) uint8 RGB.

    `data` has the encoding's channels and unsigned dtype (uint8, or uint16 of either byte
    order) and may be a strided view (row padding). The conversion is cv_bridge's to rgb8 (see
    `ENCODINGS`): a view of `data` for rgb8, otherwise a new array. ImageFormatError names the
    encoding and the layout expected."""
    enc = encoding_info(encoding)
    arr = data[..., None] if data.ndim == 2 else data
    if (
        arr.ndim != 3
        or arr.shape[2] != enc.channels
        or arr.dtype.kind != "u"
        or arr.dtype.itemsize * 8 != enc.bits
    ):
        raise ImageFormatError(
            f"{encoding} image must be uint{enc.bits} (H, W, {enc.channels}), "
            f"got {data.dtype} {data.shape}"
        )
    if enc.channels == 2 and arr.shape[1] % 2:
        raise ImageFormatError(
            f"{encoding} (packed YUV 4:2:2) needs an even width, got {arr.shape[1]}"
        )
    if not arr.dtype.isnative or any(s % arr.itemsize for s in arr.strides):
        # OpenCV takes native samples on rows aligned to a sample: copy (cv_bridge copies too)
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    rgb = arr
    if enc.code is not None:
        src = arr[:, :, 0] if enc.channels == 1 else arr
        try:
            rgb = cv2.cvtColor(src, enc.code)
        except cv2.error as exc:  # e.g. an image too small to demosaic
            raise ImageFormatError(
                f"{encoding} image {data.shape} does not convert to RGB: {exc}"
            ) from None
    if enc.bits == 16:
        rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / 65535.0)
    return rgb


def raw_to_rgb(
    data, height: int, width: int, step: int, encoding: str, is_bigendian: bool = False
) -> np.ndarray:
    """The fields of a sensor_msgs/Image -> (H, W, 3) uint8 RGB (see `to_rgb`).

    data: height * step bytes (bytes, array.array or uint8 numpy array), rows of `step` bytes
    of which the first width * channels * bytes-per-sample are pixels (the rest is padding);
    is_bigendian: byte order of 16-bit samples. No copy is made before the conversion (for
    rgb8 the result is a view of `data`). ImageFormatError names a refused encoding (with the
    accepted ones) or the geometry that does not add up."""
    enc = encoding_info(encoding)
    itemsize = enc.bits // 8
    row = width * enc.channels * itemsize
    if height <= 0 or width <= 0 or step < row:
        raise ImageFormatError(
            f"bad image geometry {width}x{height} step {step} for {encoding}: step must be "
            f">= width * {enc.channels} channels * {itemsize} bytes = {row}"
        )
    buf = np.frombuffer(data, np.uint8)
    if buf.size != height * step:
        raise ImageFormatError(
            f"image data has {buf.size} bytes, expected height*step = {height * step}"
        )
    dtype = enc.dtype.newbyteorder(">" if is_bigendian else "<")
    arr = np.ndarray(
        (height, width, enc.channels),
        dtype,
        buffer=buf,
        strides=(step, enc.channels * itemsize, itemsize),
    )
    return to_rgb(arr, encoding)


def image_msg_to_rgb(msg) -> np.ndarray:
    """A sensor_msgs/Image (an rclpy or a rosbags message: height, width, step, encoding,
    is_bigendian, data) -> (H, W, 3) uint8 RGB; ImageFormatError says what is wrong."""
    return raw_to_rgb(
        msg.data,
        int(msg.height),
        int(msg.width),
        int(msg.step),
        str(msg.encoding),
        bool(msg.is_bigendian),
    )


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


# image_transport "compressed" formats: "<raw encoding>; <jpeg|png> compressed [<encoding>]"
# (e.g. "rgb8; jpeg compressed bgr8"; the trailing encoding only for colour images), or just
# "jpeg" / "png" / "jpg" (cv_bridge's cv2_to_compressed_imgmsg) from other publishers.
COMPRESSED_CODECS = ("jpeg", "jpg", "png")


def _parse_compressed_format(fmt: str) -> tuple[str, str, str]:
    """-> (raw encoding or "", codec, stored channel order "rgb" or "bgr")."""
    raw, sep, rest = fmt.partition(";")
    raw, rest = raw.strip(), rest.strip().lower()
    if not sep:
        raw, rest = "", raw.lower()
    codec = rest.split()[0] if rest else ""
    if codec not in COMPRESSED_CODECS:
        raise ImageFormatError(
            f"unsupported compressed format {fmt!r}; expected "
            "'<encoding>; jpeg|png compressed [<encoding>]' or 'jpeg'/'jpg'/'png'"
        )
    if raw and raw not in ENCODINGS:
        raise ImageFormatError(
            f"compressed image of raw encoding {raw!r} ({fmt!r}); expected one of "
            f"{', '.join(ENCODINGS)}"
        )
    stored = rest.partition("compressed")[2].strip()
    return raw, codec, "rgb" if stored.startswith("rgb") else "bgr"


def _decoded_encoding(img: np.ndarray, raw: str, order: str, fmt: str) -> str:
    """The sensor_msgs encoding of an image `cv2.imdecode(..., IMREAD_UNCHANGED)` returned."""
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(img.dtype)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if bits is not None and channels == 1:
        raw_enc = ENCODINGS.get(raw)
        if raw_enc is not None and raw_enc.code in _BAYER_CODES and raw_enc.bits == bits:
            return raw  # a Bayer mosaic compressed as is: demosaiced like the raw image
        return f"mono{bits}"
    if bits is not None and channels in (3, 4):
        return f"{order}{'a' if channels == 4 else ''}{bits}"
    raise ImageFormatError(
        f"compressed image ({fmt!r}) decodes to {img.dtype} {img.shape}; expected 8- or "
        "16-bit grey, colour or colour with alpha"
    )


def decode_compressed(data: bytes, fmt: str) -> np.ndarray:
    """A sensor_msgs/CompressedImage payload (JPEG/PNG) -> (H, W, 3) uint8 RGB (OpenCV).

    Decoded with `cv2.imdecode(..., IMREAD_UNCHANGED)` and read by its channels as cv_bridge
    reads a CompressedImage: one channel is grey (8 or 16 bit, e.g. a greyscale JPEG or a
    mono16 PNG), or the Bayer mosaic when `fmt` names a Bayer raw encoding of that depth;
    three/four channels are BGR/BGRA as image_transport stores colour ("... compressed bgr8",
    or bgr16 for 16-bit PNG), or RGB/RGBA when the format says "compressed rgb8"/"rgb16".
    Then converted as `to_rgb` converts that encoding (16-bit scaled to 8; alpha dropped).
    A raw encoding named in `fmt` must be one of ENCODINGS. ImageFormatError names the
    format and what was expected."""
    raw, codec, order = _parse_compressed_format(fmt)
    if not len(data):
        raise ImageFormatError(f"empty compressed image ({fmt!r})")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageFormatError(f"{codec} data do not decode ({fmt!r}): {exc}") from None
    if img is None:
        raise ImageFormatError(f"{len(data)} bytes do not decode as {codec} ({fmt!r})")
    return to_rgb(img, _decoded_encoding(img, raw, order, fmt))
