"""Overload: 30 Hz images into a model slower than 30 Hz, for PARA_OVERLOAD_SECONDS (120).

The node must process the newest frame (small image age), keep its memory flat, and count
the frames it skipped in /diagnostics.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.ros_helpers.policy_fixture import Driver, rss_mb, start_node, write_model

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SECONDS = float(os.environ.get("PARA_OVERLOAD_SECONDS", "120"))


def test_overload_newest_frame_flat_memory(tmp_path, ros_env):
    model = write_model(tmp_path / "slow.onnx", heavy_layers=6)  # ~55 ms per inference
    node = start_node(model, ros_env, log=tmp_path / "node.log")
    driver = Driver()
    try:
        t_start = time.monotonic()
        while not driver.diag(model) and time.monotonic() - t_start < 30:
            time.sleep(0.2)
        sent = 0
        rss = []
        t0 = time.monotonic()
        next_t = t0
        while time.monotonic() - t0 < SECONDS:
            driver.send()
            sent += 1
            next_t += 1 / 30
            if sent % 60 == 0:
                rss.append((time.monotonic() - t0, rss_mb(node.pid)))
            time.sleep(max(0.0, next_t - time.monotonic()))
        time.sleep(1.0)
        assert node.poll() is None, (tmp_path / "node.log").read_text()
        actions = driver.messages("action")
        diag = driver.diag(model)
        processed = int(diag["frames_processed"])
        superseded = int(diag.get("skipped.superseded", 0))
        # slower than the camera: most frames cannot be processed, and the node says so
        assert processed < 0.8 * sent and superseded > 0.2 * sent, diag
        assert processed + superseded >= 0.9 * sent, (processed, superseded, sent)
        # newest frame wins: the frame being processed is at most ~2 inference times old
        ages = np.array([a.image_age_ms for a in actions])
        assert np.median(ages) < 120 and np.percentile(ages, 99) < 400, np.percentile(ages, 99)
        # memory is flat after warm-up: compare the second and the last quarter of the run
        mid = [m for t, m in rss if SECONDS * 0.25 <= t < SECONDS * 0.5]
        end = [m for t, m in rss if t >= SECONDS * 0.75]
        growth = np.median(end) - np.median(mid)
        assert growth < 10.0, f"RSS grew {growth:.1f} MB: {rss}"
        print(
            f"overload: sent {sent} frames in {SECONDS:.0f} s, processed {processed}, "
            f"superseded {superseded}; image age median {np.median(ages):.1f} ms p99 "
            f"{np.percentile(ages, 99):.1f} ms; RSS {rss[0][1]:.1f} -> {rss[-1][1]:.1f} MB"
        )
    finally:
        driver.close()
        node.terminate()
        node.wait(10)
