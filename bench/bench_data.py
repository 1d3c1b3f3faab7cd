"""Reader throughput (frames/s) for each format users already have, against the project's own
rosbag reader, in the same run on the same generated frames (128 px, 200 frames):

    own_bag       this project's bag (sensor_msgs/Image, PoseStamped topics)
    realsense_bag CompressedImage JPEG decode + /tf, /tf_static lookups at every image stamp
    libero        official LIBERO HDF5 (flip, MJCF camera)
    lerobot       LeRobot v3.0 (parquet + H.264 video decode; the field files are AV1, which
                  the same PyAV path decodes)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _frames_per_s(read, n_frames: int, repeat: int = 3) -> dict:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        eps = read()
        times.append(time.perf_counter() - t0)
        assert sum(len(e) for e in eps) == n_frames
    med = float(np.median(times))
    return {"frames": n_frames, "read_s_median": med, "frames_per_s": n_frames / med}


def _run(fmt: str) -> dict:
    from para_ros.data.readers import load_episodes
    from para_ros.data.rosbag_io import write_bag
    from para_ros.data.source import DataSource
    from para_ros.data.synthetic import make_episodes
    from tests.format_writers import (
        write_calibration,
        write_lerobot,
        write_libero,
        write_realsense_bag,
    )
    from tests.test_data_formats import REALSENSE

    eps = make_episodes(2, seed=0, image_hw=(128, 128), n_frames=100)
    n = sum(len(e) for e in eps)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if fmt == "own_bag":
            (tmp / "b").mkdir()
            for k, ep in enumerate(eps):
                write_bag(tmp / "b" / f"ep{k}.mcap", ep)
            return _frames_per_s(lambda: load_episodes(tmp / "b"), n)
        if fmt == "realsense_bag":
            (tmp / "b").mkdir()
            for k, ep in enumerate(eps):
                write_realsense_bag(tmp / "b" / f"ep{k}", ep)
            return _frames_per_s(lambda: load_episodes(tmp / "b", REALSENSE), n)
        if fmt == "libero":
            path = write_libero(tmp / "demo.hdf5", eps)
            return _frames_per_s(lambda: load_episodes(path), n)
        calib = write_calibration(tmp / "c.json", eps[0])
        root = write_lerobot(tmp / "ds", eps)
        return _frames_per_s(lambda: load_episodes(root, DataSource(calibration=str(calib))), n)


def benchmarks():
    return [
        (f"read_{fmt}", lambda fmt=fmt: _run(fmt))
        for fmt in ("own_bag", "realsense_bag", "libero", "lerobot")
    ]
