"""Policy node overhead and frame age, two processes on loopback (real rclpy, Fast DDS).

overhead = end-to-end latency (image published by a driver process -> PolicyAction received
by it) - the runtime's own inference time (PolicyAction.inference_time_ms). The model is the
constant test graph (inference ~0.1 ms), so the figure is the node: transport both ways,
conversion, resize to the model input, decode, gating and publishing.
overload: 30 Hz images into a ~55 ms model; age of the frame being processed.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.ros_helpers.env import ros_isolated_env
from tests.ros_helpers.policy_fixture import Driver, start_node, write_model

os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")  # 448^2 frames (RECIPES)


def _run(image: int, heavy_layers: int, rate_hz: float, seconds: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_node_"))
    env = ros_isolated_env(tmp)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    model = write_model(tmp / "m.onnx", heavy_layers=heavy_layers, image=image)
    node = start_node(model, env, "max_image_age:=2.0", log=tmp / "node.log")
    driver = Driver(image_hw=(image, image))
    try:
        end = time.monotonic() + 30
        while not driver.diag(model) and time.monotonic() < end:
            time.sleep(0.2)
        sent = {}
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < seconds:
            stamp = driver.stamp()
            driver.send(stamp=stamp)
            sent[(stamp.sec, stamp.nanosec)] = time.time()
            k += 1
            time.sleep(max(0.0, t0 + k / rate_hz - time.monotonic()))
        time.sleep(1.0)
        lat, over, ages = [], [], []
        with driver.lock:
            got = list(driver.got["action"])
        mono_to_wall = time.time() - time.monotonic()
        for t_rx, a in got:
            key = (a.header.stamp.sec, a.header.stamp.nanosec)
            if key not in sent:
                continue
            e2e = (t_rx + mono_to_wall - sent[key]) * 1e3
            lat.append(e2e)
            over.append(e2e - a.inference_time_ms)
            ages.append(a.image_age_ms)
        diag = driver.diag(model)
    finally:
        driver.close()
        node.terminate()
        node.wait(10)

    def stats(v):
        return (
            {
                "median": float(np.median(v)),
                "p99": float(np.percentile(v, 99)),
                "min": float(np.min(v)),
            }
            if v
            else {}
        )

    return {
        "image": image,
        "frames_sent": len(sent),
        "actions": len(lat),
        "rate_hz": rate_hz,
        "end_to_end_ms": stats(lat),
        "node_overhead_ms": stats(over),
        "image_age_at_inference_ms": stats(ages),
        "skipped": {
            k[len("skipped.") :]: int(v) for k, v in diag.items() if k.startswith("skipped.")
        },
        "rates_hz": {
            k[len("rate_hz.") :]: float(v) for k, v in diag.items() if k.startswith("rate_hz.")
        },
    }


def benchmarks():
    return [
        ("overhead_224", lambda: _run(224, 0, 10.0, 20.0)),
        ("overhead_448", lambda: _run(448, 0, 10.0, 20.0)),
        ("overload_30hz_slow_model", lambda: _run(64, 6, 30.0, 20.0)),
    ]
