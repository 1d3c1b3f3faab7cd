"""Camera encodings -> RGB8 as cv_bridge converts them (para_ros.core.image).

Each raw image is built here from a known RGB image with the encoding's own definition
(BT.601 video-range YCbCr for YUV 4:2:2, sampling on the 2x2 tile for Bayer, x257 for
16-bit), converted with the product, and compared with the source image within the
conversion's error and with OpenCV's own conversion of the same bytes.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from para_ros.core.image import (
    ENCODINGS,
    ImageFormatError,
    decode_compressed,
    image_msg_to_rgb,
    raw_to_rgb,
    to_rgb,
)

H, W = 32, 48


def ramp_rgb() -> np.ndarray:
    """(H, W, 3) uint8, each channel linear in x and y with its own slope (channel swaps,
    flips and wrong Bayer phases all show)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    rgb = np.stack([30 + 3 * x, 200 - 2 * y, 50 + 2 * x + 2 * y], axis=-1)
    return rgb.astype(np.uint8)


def raw(arr: np.ndarray, encoding: str, pad: int = 0, big: bool = False, fill: int = 0xAB):
    """(H, W[, C]) samples -> an Image-like message with `pad` filler bytes per row."""
    dtype = arr.dtype.newbyteorder(">" if big else "<")
    rows = arr.astype(dtype).reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.full((rows.shape[0], rows.shape[1] + pad), fill, np.uint8)
    padded[:, : rows.shape[1]] = rows
    return SimpleNamespace(
        height=arr.shape[0],
        width=arr.shape[1],
        step=padded.shape[1],
        encoding=encoding,
        is_bigendian=int(big),
        data=padded.tobytes(),
    )


# -- YUV 4:2:2 -------------------------------------------------------------------------------


def bt601_video_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (0..255) -> Y Cb Cr, BT.601 with video range (Y 16..235, Cb/Cr 16..240), float."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return np.stack([y, cb, cr], axis=-1)


def packed_422(rgb: np.ndarray, order: str) -> np.ndarray:
    """(H, W, 2) uint8 YUYV or UYVY bytes: per pixel pair Y0 U Y1 V (yuyv) or U Y0 V Y1
    (uyvy), chroma averaged over the pair."""
    ycc = bt601_video_ycbcr(rgb)
    y = ycc[..., 0]
    cb = (ycc[:, 0::2, 1] + ycc[:, 1::2, 1]) / 2
    cr = (ycc[:, 0::2, 2] + ycc[:, 1::2, 2]) / 2
    chroma = np.empty_like(y)
    chroma[:, 0::2], chroma[:, 1::2] = cb, cr
    planes = (y, chroma) if order == "yuyv" else (chroma, y)
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def pair_constant(rgb: np.ndarray) -> np.ndarray:
    """Each horizontal pixel pair takes the colour of its left pixel (4:2:2 keeps it whole)."""
    return rgb[:, (np.arange(rgb.shape[1]) // 2) * 2]


@pytest.mark.parametrize(
    ("encoding", "order", "code"),
    [
        ("yuv422_yuy2", "yuyv", cv2.COLOR_YUV2RGB_YUY2),
        ("yuyv", "yuyv", cv2.COLOR_YUV2RGB_YUY2),
        ("yuv422", "uyvy", cv2.COLOR_YUV2RGB_UYVY),
        ("uyvy", "uyvy", cv2.COLOR_YUV2RGB_UYVY),
    ],
)
def test_packed_yuv422_gives_the_source_colours(encoding, order, code):
    src = pair_constant(ramp_rgb())
    yuv = packed_422(src, order)
    out = image_msg_to_rgb(raw(yuv, encoding, pad=6))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cv2.cvtColor(yuv, code))
    # Y, Cb, Cr rounded to integers: at most 0.5 * (1.164 + 2.018) ~ 1.6 levels, plus OpenCV's
    # fixed-point arithmetic
    err = np.abs(out.astype(int) - src.astype(int))
    assert err.max() <= 3, err.max()
    # the other byte order is a different image (the test tells the two apart)
    other = "uyvy" if order == "yuyv" else "yuyv"
    assert np.abs(image_msg_to_rgb(raw(yuv, other)).astype(int) - src).max() > 30


def test_packed_yuv422_needs_an_even_width():
    yuv = packed_422(pair_constant(ramp_rgb()), "yuyv")[:, :5]
    with pytest.raises(ImageFormatError, match=r"yuv422_yuy2 .*even width, got 5"):
        image_msg_to_rgb(raw(yuv, "yuv422_yuy2"))


# -- Bayer ---------------------------------------------------------------------------------


def mosaic(rgb: np.ndarray, tile: str) -> np.ndarray:
    """(H, W) Bayer mosaic: pixel (y, x) keeps the channel `tile` names at (y % 2, x % 2),
    tile letters row-major from the top-left pixel as ROS names the pattern."""
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for k, letter in enumerate(tile):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(letter)]
    return out


BAYER = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}


@pytest.mark.parametrize("tile", sorted(BAYER))
def test_bayer_8_and_16_bit_demosaic_to_the_source_colours(tile):
    src = ramp_rgb()
    m8 = mosaic(src, tile)
    out8 = image_msg_to_rgb(raw(m8, f"bayer_{tile}8", pad=2))
    np.testing.assert_array_equal(out8, cv2.cvtColor(m8, BAYER[tile]))
    # bilinear demosaicing is exact on linear ramps away from the border
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(out8[inner].astype(int) - src[inner]).max() <= 1
    assert np.abs(out8.astype(int) - src).max() <= 8  # border pixels: OpenCV's extrapolation

    m16 = m8.astype(np.uint16) * 257
    out16 = image_msg_to_rgb(raw(m16, f"bayer_{tile}16", pad=3, big=True))
    ref16 = cv2.cvtColor(m16, BAYER[tile])  # demosaiced at 16 bits, then scaled as cv_bridge
    np.testing.assert_array_equal(out16, np.floor(ref16 / 257.0 + 0.5).astype(np.uint8))
    assert np.abs(out16[inner].astype(int) - src[inner]).max() <= 1

    # every other phase is a different image: the ROS -> OpenCV naming is checked, not assumed
    for other in set(BAYER) - {tile}:
        wrong = image_msg_to_rgb(raw(m8, f"bayer_{other}8"))
        assert np.abs(wrong[inner].astype(int) - src[inner]).max() > 20, other


# -- 8- and 16-bit colour, mono, generic OpenCV types ---------------------------------------


def as_encoding(rgb: np.ndarray, name: str) -> np.ndarray:
    """The source RGB image laid out as colour/mono encoding `name` (alpha 255 / 65535)."""
    wide = name.endswith("16")
    base = name[:-2] if wide else name.rstrip("8")
    img = rgb.astype(np.uint16) * 257 if wide else rgb
    if base == "mono":
        return img[..., 1]
    if base.startswith("bgr"):
        img = img[..., ::-1]
    if base.endswith("a"):
        alpha = np.full(img.shape[:2] + (1,), 65535 if wide else 255, img.dtype)
        img = np.concatenate([img, alpha], axis=-1)
    return np.ascontiguousarray(img)


COLOUR = ["rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16"]


@pytest.mark.parametrize("name", COLOUR)
@pytest.mark.parametrize(("pad", "big"), [(0, False), (5, False), (7, True)])
def test_colour_encodings_give_the_source_exactly(name, pad, big):
    src = ramp_rgb()
    out = image_msg_to_rgb(raw(as_encoding(src, name), name, pad=pad, big=big))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, src)


def test_16_bit_samples_are_scaled_by_255_over_65535_with_rounding():
    v = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every 16-bit value once
    expect = np.floor(v.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    for big in (False, True):
        out = image_msg_to_rgb(raw(v, "mono16", pad=1, big=big))
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], expect)
    # a 16-bit image read with the wrong byte order is another image: is_bigendian is obeyed
    msg = raw(v, "mono16", big=True)
    msg.is_bigendian = 0
    assert not np.array_equal(image_msg_to_rgb(msg)[..., 0], expect)
    rgb16 = np.stack([v, v[::-1], v.T], axis=-1)
    out = image_msg_to_rgb(raw(rgb16[..., ::-1], "bgr16", big=True))
    np.testing.assert_array_equal(out, np.stack([expect, expect[::-1], expect.T], axis=-1))


@pytest.mark.parametrize(
    ("name", "layout"),
    [("mono8", "mono8"), ("8UC1", "mono8"), ("8UC3", "bgr8"), ("8UC4", "bgra8")],
)
def test_mono_and_generic_8bit_types(name, layout):
    src = ramp_rgb()
    out = image_msg_to_rgb(raw(as_encoding(src, layout), name, pad=3))
    if layout == "mono8":
        np.testing.assert_array_equal(out, np.repeat(src[..., 1:2], 3, axis=-1))
    else:  # OpenCV's channel order, as an OpenCV frame published with passthrough
        np.testing.assert_array_equal(out, src)


def test_rgb8_without_padding_is_a_view_of_the_message_data():
    src = ramp_rgb()
    buf = np.frombuffer(src.tobytes(), np.uint8)
    out = raw_to_rgb(buf, H, W, W * 3, "rgb8")
    assert np.shares_memory(out, buf)
    np.testing.assert_array_equal(out, src)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["16UC1", "32FC1", "64FC3", "nv12", "RGB8", "jpeg", ""])
def test_refused_encodings_are_named_with_the_accepted_list(name):
    msg = raw(np.zeros((4, 4, 3), np.uint8), name)
    with pytest.raises(ImageFormatError) as info:
        image_msg_to_rgb(msg)
    text = str(info.value)
    assert text.startswith(f"unsupported image encoding {name!r}; expected one of ")
    listed = text.split("expected one of ", 1)[1].split(", ")
    assert listed == list(ENCODINGS)
    for accepted in ("yuv422_yuy2", "uyvy", "mono16", "bayer_grbg16", "bgra16", "8UC3"):
        assert accepted in listed


def test_bad_geometry_is_refused_with_the_numbers():
    msg = raw(np.zeros((4, 6), np.uint16), "mono16")
    msg.step = 11  # < 6 pixels * 2 bytes
    with pytest.raises(ImageFormatError, match=re.escape("step 11 for mono16: step must be >=")):
        image_msg_to_rgb(msg)
    msg = raw(np.zeros((4, 6), np.uint16), "mono16")
    msg.data = msg.data[:-1]
    with pytest.raises(ImageFormatError, match=r"47 bytes, expected height\*step = 48"):
        image_msg_to_rgb(msg)
    with pytest.raises(ImageFormatError, match=r"mono8 image must be uint8 \(H, W, 1\)"):
        to_rgb(np.zeros((4, 4, 3), np.uint8), "mono8")


# -- CompressedImage -----------------------------------------------------------------------


def test_greyscale_jpeg_decodes_to_grey_rgb():
    grey = ramp_rgb()[..., 1]
    _, jpg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
    assert decoded.ndim == 2  # a one-channel JPEG
    for fmt in ("mono8; jpeg compressed ", "jpeg", "jpg", "rgb8; jpeg compressed bgr8"):
        out = decode_compressed(jpg.tobytes(), fmt)
        np.testing.assert_array_equal(out, cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB))
        assert np.abs(out[..., 0].astype(int) - grey).max() <= 4  # JPEG's loss on a ramp


def test_16_bit_png_is_scaled_to_8_bits():
    v = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 97 % 65536).astype(np.uint16)
    _, png = cv2.imencode(".png", v)
    out = decode_compressed(png.tobytes(), "mono16; png compressed ")
    expect = np.floor(v.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out, np.repeat(expect[..., None], 3, axis=-1))

    src = ramp_rgb()
    _, png = cv2.imencode(".png", as_encoding(src, "bgr16"))  # image_transport stores BGR
    np.testing.assert_array_equal(
        decode_compressed(png.tobytes(), "rgb16; png compressed bgr16"), src
    )
    _, png = cv2.imencode(".png", as_encoding(src, "rgb16"))  # RGB data compressed as is
    np.testing.assert_array_equal(
        decode_compressed(png.tobytes(), "rgb16; png compressed rgb16"), src
    )
    _, png = cv2.imencode(".png", as_encoding(src, "bgra8"))
    np.testing.assert_array_equal(decode_compressed(png.tobytes(), "png"), src)


def test_bayer_png_is_demosaiced_like_the_raw_image():
    m = mosaic(ramp_rgb(), "rggb")
    _, png = cv2.imencode(".png", m)
    out = decode_compressed(png.tobytes(), "bayer_rggb8; png compressed ")
    np.testing.assert_array_equal(out, image_msg_to_rgb(raw(m, "bayer_rggb8")))


def test_compressed_refusals_name_the_format():
    _, png = cv2.imencode(".png", np.zeros((4, 4), np.uint16))
    with pytest.raises(ImageFormatError, match=r"raw encoding '16UC1'.*expected one of rgb8, "):
        decode_compressed(png.tobytes(), "16UC1; png compressed ")
    with pytest.raises(ImageFormatError, match=r"unsupported compressed format '16UC1; compre"):
        decode_compressed(png.tobytes(), "16UC1; compressedDepth png")


# -- ROS messages: rclpy (the node) and rosbags (the bag reader) -----------------------------


def test_rclpy_yuv422_yuy2_image_round_trip_through_the_node_conversion():
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from para_ros.nodes.conversions import image_to_rgb

    src = pair_constant(ramp_rgb())
    yuv = packed_422(src, "yuyv")
    m = raw(yuv, "yuv422_yuy2", pad=4)
    msg = Image(height=H, width=W, encoding=m.encoding, is_bigendian=0, step=m.step)
    msg.data = m.data
    back = deserialize_message(serialize_message(msg), Image)
    out = image_to_rgb(back)
    np.testing.assert_array_equal(out, cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_YUY2))
    assert np.abs(out.astype(int) - src).max() <= 3


def test_bag_reader_decodes_a_big_endian_bayer16_image():
    from para_ros.data.rosbag_io import _typestore, decode_image

    ts = _typestore()
    M = ts.types
    src = ramp_rgb()
    m16 = mosaic(src, "gbrg").astype(np.uint16) * 257
    m = raw(m16, "bayer_gbrg16", pad=2, big=True)
    header = M["std_msgs/msg/Header"](
        stamp=M["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="camera"
    )
    msg = M["sensor_msgs/msg/Image"](
        header=header,
        height=H,
        width=W,
        encoding=m.encoding,
        is_bigendian=1,
        step=m.step,
        data=np.frombuffer(m.data, np.uint8),
    )
    msgtype = "sensor_msgs/msg/Image"
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, msgtype), msgtype)
    out = decode_image(back, msgtype)
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(out[inner].astype(int) - src[inner]).max() <= 1
