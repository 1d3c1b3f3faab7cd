"""The shipped model (models/para_libero_spatial_t0) behind OnnxPolicy.infer, as the node and
the closed-loop evaluation call it: resize + start keypoint, ONNX Runtime, decode, on a real
LIBERO frame (init state 0 rendered at 128 px). 1 and 2 ORT threads.
"""

from __future__ import annotations

import numpy as np

from bench.common import timeit


def _measure(threads: int) -> dict:
    from para_ros.resources import model_file
    from para_ros.runtime.onnx_policy import Observation, OnnxPolicy
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    sim = LiberoSim(SimConfig(image_size=128))
    try:
        o = sim.reset(0)
    finally:
        sim.close()
    policy = OnnxPolicy(str(model_file()), ["CPUExecutionProvider"], threads)
    obs = Observation(o.image, o.K, o.T_world_cam, o.eef_pos)
    parts = {"preprocess": [], "inference": [], "decode": []}

    def call():
        r = policy.infer(obs)
        parts["preprocess"].append(r.preprocess_ms)
        parts["inference"].append(r.inference_ms)
        parts["decode"].append(r.decode_ms)

    res = {"model": str(model_file().parent.name), "threads": threads, "batch": 1}
    res["infer_total"] = timeit(call, repeat=50, warmup=3)

    for k, v in parts.items():
        res[f"{k}_median_ms"] = float(np.median(v[3:]))
    res["providers"] = policy.providers
    return res


def benchmarks():
    return [(f"default_model_infer_{t}thread", lambda t=t: _measure(t)) for t in (1, 2)]
