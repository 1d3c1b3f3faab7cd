"""Pure-core throughput: project/lift and codec encode/decode on batches (numpy, 1 thread)."""

from __future__ import annotations

import itertools

import numpy as np

from bench.common import timeit
from para_ros.core import codecs, geometry


def _camera():
    # LIBERO-like agentview: 1 m in front of the table, 0.5 m above it, looking down 35 deg.
    pitch = np.radians(35)
    z = np.array([-np.cos(pitch), 0.0, -np.sin(pitch)])  # optical axis
    x = np.array([0.0, -1.0, 0.0])
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = [1.0, 0.0, 1.5]
    return T, geometry.intrinsics(270.39, 270.39, 112, 112)


def bench_project_lift(n: int = 6 * 32):
    T, K = _camera()
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, 224, (n, 2))
    h = rng.uniform(0.8, 1.2, n)
    r = timeit(lambda: geometry.lift(uv, h, K, T), repeat=200)
    return {"points": n, **r}


def bench_pca1d_codec(n: int = 4096):
    rng = np.random.default_rng(0)
    e = rng.normal(size=(n, 3)) * [0.05, 0.05, 1.0]
    codec = codecs.fit_pca1d(e)
    r = timeit(lambda: codec.decode(codec.encode(e)), repeat=100)
    return {"rotations": n, **r}


def bench_tf_lookup(rate_hz: float = 100.0, seconds: float = 10.0):
    """The node's TF lookup: world <- tcp through a 7-joint arm on /tf at `rate_hz` (10 s of
    samples buffered) and static base, hand and tcp edges; one lookup between two samples."""
    from scipy.spatial.transform import Rotation

    from para_ros.core.tf_buffer import TfBuffer

    buf = TfBuffer(cache_s=seconds)
    buf.add("world", "link0", 0.0, (0, 0, 0.9), (0, 0, 0, 1), static=True)
    links = [f"link{i}" for i in range(8)]
    rng = np.random.default_rng(0)
    for t in np.arange(0.0, seconds, 1.0 / rate_hz):
        for parent, child in itertools.pairwise(links):
            q = Rotation.from_rotvec(rng.normal(size=3) * 0.1).as_quat()
            buf.add(parent, child, float(t), (0.0, 0.0, 0.1), q, static=False)
    buf.add("link7", "hand", 0.0, (0, 0, 0.1), (0, 0, 0, 1), static=True)
    buf.add("hand", "tcp", 0.0, (0, 0, 0.1), (0, 0, 0, 1), static=True)
    t = seconds - 0.5 - 0.5 / rate_hz
    r = timeit(lambda: buf.lookup("world", "tcp", t, 0.05), repeat=500)
    return {"dynamic_edges": len(links) - 1, "rate_hz": rate_hz, **r}


def benchmarks():
    return [
        ("lift_T6xZ32", bench_project_lift),
        ("pca1d_roundtrip_4096", bench_pca1d_codec),
        ("tf_lookup_7_joints_100hz", bench_tf_lookup),
    ]
