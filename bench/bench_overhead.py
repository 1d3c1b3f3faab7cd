"""The policy node's own work per frame, step by step, against inference (same run, in
process, one thread): what `para_policy` does between receiving an image and publishing.

  convert     sensor_msgs/Image (rgb8) or CompressedImage (JPEG) -> RGB array
              (para_ros.nodes.conversions, as the node calls it)
  preprocess  resize to the model input, K scaled, start keypoint projected (OnnxPolicy.infer)
  inference   the ONNX graph (OnnxPolicy.infer's own timer)
  decode      classes -> world poses (OnnxPolicy.infer)
  publish     PolicyAction + nav_msgs/Path built as the node builds them and published with
              rclpy (isolated domain, localhost, no subscriber)
overhead = convert + preprocess + decode + publish, per frame: median and spread
(bench.common.spread).
Frames: the field data's LIBERO frames scaled to the camera size; model: the vits224
architecture at 224 px (random weights, export_friendly + optimised) and the shipped
libero128 model at 128 px.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import spread


def _frames(n: int, hw: tuple[int, int]):
    from para_ros.core.image import prepare
    from para_ros.data.readers import load_episodes
    from para_training.real_frames import default_field_data

    path = default_field_data()
    if path is None:
        raise FileNotFoundError("no field data (../shared/field-data)")
    ep = load_episodes(path)[0]
    idx = np.linspace(0, len(ep.eef_pos) - 1, n).round().astype(int)
    out = []
    for k in idx:
        img, K = prepare(
            np.asarray(ep.rgb[k]), np.asarray(ep.K, np.float64).reshape(-1, 3, 3)[0], hw
        )
        out.append((img, K, np.asarray(ep.T_world_cam).reshape(-1, 4, 4)[0], ep.eef_pos[k]))
    return out


def _measure(model: Path, camera_hw: tuple[int, int], n: int, compressed: bool) -> dict:
    import cv2
    import rclpy
    from nav_msgs.msg import Path as PathMsg
    from sensor_msgs.msg import CompressedImage

    from para_ros.msg import PolicyAction
    from para_ros.nodes import conversions as cv
    from para_ros.runtime.onnx_policy import Observation, OnnxPolicy

    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    policy = OnnxPolicy(str(model), ["CPUExecutionProvider"], 1)
    policy.warmup()
    frames = _frames(n, camera_hw)
    rclpy.init()
    node = rclpy.create_node("bench_overhead")
    pub = node.create_publisher(PolicyAction, "/bench/action", 1)
    pub_path = node.create_publisher(PathMsg, "/bench/path", 1)
    stamp = node.get_clock().now().to_msg()
    steps: dict[str, list[float]] = {
        k: [] for k in ("convert", "preprocess", "inference", "decode", "publish")
    }
    try:
        for img, K, T, eef in frames * 2:
            if compressed:
                msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
                msg.data = cv2.imencode(".jpg", img[..., ::-1])[1].tobytes()
            else:
                msg = cv.rgb_to_image(img, stamp, "camera")
            t0 = time.perf_counter()
            rgb = cv.compressed_to_rgb(msg) if compressed else cv.image_to_rgb(msg)
            t1 = time.perf_counter()
            res = policy.infer(Observation(rgb, K, T, eef, -1.0))
            t2 = time.perf_counter()
            ch = res.chunk
            a = PolicyAction()
            a.header.stamp = stamp
            a.header.frame_id = "world"
            a.model_id = policy.model_id
            cv.fill_chunk(a, ch)  # the node's own conversion
            a.inference_time_ms = float(res.inference_ms)
            pub.publish(a)
            path = PathMsg()
            path.header = a.header
            path.poses = [
                cv.make_pose_stamped(p, q, stamp, "world")
                for p, q, ok in zip(ch.positions, ch.quat_xyzw, ch.valid, strict=True)
                if ok
            ]
            pub_path.publish(path)
            t3 = time.perf_counter()
            steps["convert"].append((t1 - t0) * 1e3)
            steps["preprocess"].append(res.preprocess_ms)
            steps["inference"].append(res.inference_ms)
            steps["decode"].append(res.decode_ms)
            steps["publish"].append((t3 - t2) * 1e3)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    over = [
        steps["convert"][k] + steps["preprocess"][k] + steps["decode"][k] + steps["publish"][k]
        for k in range(len(steps["convert"]))
    ]
    return {
        "model": model.name,
        "model_input": [policy.spec.image.height, policy.spec.image.width],
        "camera": list(camera_hw),
        "input": "jpeg" if compressed else "rgb8",
        "frames": len(over),
        "threads": 1,
        "steps": {k: spread(v) for k, v in steps.items()},
        "overhead": spread(over),
        "overhead_share_of_inference_p50": float(np.median(over) / np.median(steps["inference"])),
    }


def _vits224_model(tmp: Path) -> Path:
    from bench.models import build_checkpoint
    from para_training.export import export_onnx
    from para_training.optimize import optimize_onnx

    p = tmp / "vits224.onnx"
    export_onnx(build_checkpoint("vits224", tmp), p)
    return optimize_onnx(p, tmp / "vits224.opt.onnx", ("gelu", "slim", "ort"))


def _shipped() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "para_libero_spatial_t0" / "model.onnx"


def benchmarks():
    tmp = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    cache: dict[str, Path] = {}

    def vits():
        if "v" not in cache:
            cache["v"] = _vits224_model(tmp)
        return cache["v"]

    return [
        ("node_steps_224_rgb8", lambda: _measure(vits(), (224, 224), 30, False)),
        ("node_steps_224_jpeg", lambda: _measure(vits(), (224, 224), 30, True)),
        ("node_steps_640x480_to_224_rgb8", lambda: _measure(vits(), (480, 640), 30, False)),
        ("node_steps_libero128_shipped", lambda: _measure(_shipped(), (128, 128), 50, False)),
    ]
