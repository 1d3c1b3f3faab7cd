"""Per execution-provider request: cold start, warm latency and end-to-end `OnnxPolicy.infer`
latency, with the providers that actually run (`session.get_providers()`) and the fallback
reason. On a machine without onnxruntime-gpu or without a GPU every request runs on CPU and
the entry says so; with one, TensorRT's first start builds the engine into the cache
(`cold_start_ms`) and the second start loads it (`warm_start_ms`).

Model: the vits224 architecture (random weights, export_friendly, standard ops: TensorRT
takes the whole graph) at 224 px, and at 448 px when PARA_BENCH_448=1 (the GPU target).
fp16: TensorRT fp16 engines (trt_fp16_enable).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

REQUESTS = {
    "tensorrt_fp16": (["TensorrtExecutionProvider", "CUDAExecutionProvider"], True),
    "tensorrt_fp32": (["TensorrtExecutionProvider", "CUDAExecutionProvider"], False),
    "cuda": (["CUDAExecutionProvider"], False),
    "cpu": (["CPUExecutionProvider"], False),
}


def _model(tmp: Path, size: int) -> Path:
    import torch

    from bench.models import build_checkpoint
    from para_training import checkpoint as ckpt
    from para_training.export import export_onnx

    if size == 224:
        ck = build_checkpoint("vits224", tmp)
    else:  # the same architecture at another input size (grid = size / 4)
        from para_ros.data.synthetic import make_episodes
        from para_training.configs import DataConfig, get_preset
        from para_training.train import make_spec

        p = get_preset("vits224")
        data = DataConfig(
            data=["synthetic"],
            **{
                **p["data"],
                "image_height": size,
                "image_width": size,
                "grid_height": size // 4,
                "grid_width": size // 4,
            },
        )
        eps = make_episodes(2, n_frames=10, image_hw=(size, size))
        spec, _ = make_spec(eps, data, p["model"], log=lambda *_: None)
        torch.manual_seed(0)
        ck = ckpt.save_checkpoint(tmp / f"ck{size}", ckpt.build_model(spec).eval(), spec)
    path = tmp / f"vit{size}.onnx"
    export_onnx(ck, path)
    return path


def _obs(spec):
    from para_ros.runtime.onnx_policy import Observation

    H, W = spec.image.height, spec.image.width
    K = np.array([[W, 0, W / 2], [0, H, H / 2], [0, 0, 1.0]])
    T = np.eye(4)
    T[:3, 3] = [0, 0, 1.0]
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return Observation(img, K, T, np.array([0.05, 0.02, 0.1]), -1.0)


def _measure(size: int, repeat: int) -> dict:
    import warnings

    from para_ros.runtime.onnx_policy import OnnxPolicy

    tmp = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    model = _model(tmp, size)
    cache = tmp / "trt_cache"
    out: dict = {"image": size, "threads": 1, "model": "vits224 architecture, random weights"}
    for name, (providers, fp16) in REQUESTS.items():
        row: dict = {"requested": providers, "fp16": fp16}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            starts = []
            for _ in range(2):  # first start builds a TensorRT engine, the second loads it
                t0 = time.perf_counter()
                pol = OnnxPolicy(str(model), providers, 1, fp16=fp16, trt_cache_dir=str(cache))
                obs = _obs(pol.spec)
                pol.infer(obs)
                starts.append((time.perf_counter() - t0) * 1e3)
        row.update(
            providers=pol.providers,
            io_binding=pol.io_binding,
            fallback=pol.fallback,
            warnings=[str(w.message)[:160] for w in caught if "fell back" in str(w.message)],
            cold_start_ms=starts[0],
            warm_start_ms=starts[1],
        )
        inf, e2e = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = pol.infer(obs)
            e2e.append((time.perf_counter() - t0) * 1e3)
            inf.append(res.inference_ms)
        row["inference_ms_p50"] = float(np.median(inf))
        row["end_to_end_infer_ms_p50"] = float(np.median(e2e))
        row["end_to_end_infer_ms_p99"] = float(np.percentile(e2e, 99))
        out[name] = row
    return out


def benchmarks():
    rows = [("providers_224", lambda: _measure(224, 10))]
    if os.environ.get("PARA_BENCH_448") == "1":
        rows.append(("providers_448", lambda: _measure(448, 10)))
    return rows
