"""Offline replay throughput (frames/s) vs the runtime's inference alone, .mcap and .db3.

Same model (the tiny preset, random weights; 64 px) and the same 200 synthetic frames; the
replay figure includes reading and decoding the bag, pairing, inference, decode and metrics.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import timeit


def _setup(tmp: Path):
    from para_ros.data.synthetic import make_episode
    from para_ros.runtime.onnx_policy import OnnxPolicy
    from para_training import checkpoint as ckpt
    from para_training.configs import DataConfig, get_preset
    from para_training.export import export_onnx
    from para_training.train import make_spec

    p = get_preset("tiny")
    data = DataConfig(data=["synthetic"], **p["data"])
    ep = make_episode(np.random.default_rng(0), n_frames=200)
    spec, _ = make_spec([ep], data, p["model"], log=lambda *_: None)
    d = ckpt.save_checkpoint(tmp / "ck", ckpt.build_model(spec).eval(), spec)
    export_onnx(d, tmp / "m.onnx")
    return OnnxPolicy(str(tmp / "m.onnx"), ["CPUExecutionProvider"]), ep


def _replay(kind: str) -> dict:
    from para_ros.data.rosbag_io import read_bag, write_bag
    from para_ros.replay.evaluate import evaluate_episode
    from para_ros.runtime.onnx_policy import Observation

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        policy, ep = _setup(tmp)
        bag = write_bag(tmp / f"ep.{kind}", ep)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            ep_bag, _ = read_bag(bag)
            t1 = time.perf_counter()
            evaluate_episode(policy, ep_bag)
            runs.append((t1 - t0, time.perf_counter() - t0))
        obs = Observation(np.asarray(ep.rgb[0]), ep.K_at(0), ep.T_world_cam_at(0), ep.eef_pos[0])
        infer = timeit(lambda: policy.infer(obs), repeat=200)
        total = float(np.median([r[1] for r in runs]))
        return {
            "storage": kind,
            "frames": len(ep),
            "read_s_median": float(np.median([r[0] for r in runs])),
            "replay_total_s_median": total,
            "replay_frames_per_s": len(ep) / total,
            "runtime_infer_only_frames_per_s": 1e3 / infer["median_ms"],
            "runtime_infer_median_ms": infer["median_ms"],
        }


def benchmarks():
    return [("replay_mcap", lambda: _replay("mcap")), ("replay_db3", lambda: _replay("db3"))]
