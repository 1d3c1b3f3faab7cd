"""Inference latency before/after issue 16, batch 1, 1 thread, every variant in one process
and interleaved run by run (so load on a shared machine hits all alike):

  torch_eager       the PyTorch model (no_grad)
  ort_fp32_before   the graph as exported before (model's own modules, no optimisation)
  ort_fp32_friendly export_friendly export (LayerScale / attention scale folded, plain attention)
  ort_fp32_opt      + GELU fused + onnxslim + ORT extended optimisations saved (para-export
                    --optimize)
  ort_int8_dyn_before  quantize_dynamic of every op, as `--int8` did before
  ort_int8_dyn      int8 weight MatMuls only, dynamic activations (para-export --int8)
  ort_int8_static   the same with activation ranges calibrated on real frames (--int8 static)

Weights are random with non-zero biases (latency does not depend on them); accuracy needs
trained weights: `shipped_libero128_int8` quantises the shipped model and measures agreement
with its fp32 graph on real field-data frames.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import spread

VARIANTS = (
    "torch_eager",
    "ort_fp32_before",
    "ort_fp32_friendly",
    "ort_fp32_opt",
    "ort_int8_dyn_before",
    "ort_int8_dyn",
    "ort_int8_static",
)


def interleaved(fns: dict, repeat: int, warmup: int = 2) -> dict:
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: spread(v) for k, v in times.items()}


def _measure(preset: str, repeat: int) -> dict:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from bench.models import build_checkpoint
    from para_ros.core.onnx_metadata import read_spec
    from para_training.checkpoint import load_model
    from para_training.export import (
        ExportWrapper,
        export_onnx,
        ort_session,
        quantize_int8,
    )
    from para_training.optimize import optimize_onnx
    from para_training.real_frames import load_frames

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ck = build_checkpoint(preset, tmp)
        paths = {
            "ort_fp32_before": tmp / "before.onnx",
            "ort_fp32_friendly": tmp / "friendly.onnx",
            "ort_fp32_opt": tmp / "opt.onnx",
            "ort_int8_dyn_before": tmp / "int8_before.onnx",
            "ort_int8_dyn": tmp / "int8_dyn.onnx",
            "ort_int8_static": tmp / "int8_static.onnx",
        }
        export_onnx(ck, paths["ort_fp32_before"], friendly=False)
        export_onnx(ck, paths["ort_fp32_friendly"])
        optimize_onnx(paths["ort_fp32_friendly"], paths["ort_fp32_opt"], ("gelu", "slim", "ort"))
        quantize_dynamic(
            str(paths["ort_fp32_before"]),
            str(paths["ort_int8_dyn_before"]),
            weight_type=QuantType.QInt8,
        )
        spec = read_spec(paths["ort_fp32_friendly"])
        frames = load_frames(spec, n=16)
        base = tmp / "base.onnx"
        optimize_onnx(paths["ort_fp32_friendly"], base, ("gelu", "slim"))
        quantize_int8(base, paths["ort_int8_dyn"], "dynamic")
        quantize_int8(base, paths["ort_int8_static"], "static", frames.subset(2))
        feeds = frames.feeds(0)
        model, spec = load_model(ck)
        wrapper = ExportWrapper(model, spec).eval()
        img, st = torch.from_numpy(feeds["image"]), torch.from_numpy(feeds["start_keypoint"])

        def run_torch():
            with torch.no_grad():
                wrapper(img, st)

        sessions = {k: ort_session(p) for k, p in paths.items()}
        fns = {"torch_eager": run_torch}
        fns.update({k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()})
        res: dict = {
            "preset": preset,
            "image": [spec.image.height, spec.image.width],
            "batch": 1,
            "threads": 1,
            "MB": {k: round(p.stat().st_size / 1e6, 1) for k, p in paths.items()},
        }
        res.update(interleaved(fns, repeat))
    t = res["torch_eager"]["median_ms"]
    res["speedup_vs_torch"] = {k: round(t / res[k]["median_ms"], 2) for k in VARIANTS}
    res["note"] = "same-run interleaved medians; the machine is shared (2 cores, other jobs)"
    return res


def _shipped_int8(n_frames: int = 64, repeat: int = 40) -> dict:
    """The shipped (trained) libero128 model: fp32 as shipped, optimised, and int8 variants,
    latency and agreement with the shipped fp32 graph on real frames."""
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import onnx_outputs, ort_session, quantize_int8
    from para_training.optimize import optimize_onnx
    from para_training.real_frames import compare_outputs, load_frames

    shipped = Path(__file__).resolve().parents[1] / "models/para_libero_spatial_t0/model.onnx"
    spec = read_spec(shipped)
    frames = load_frames(spec, n=n_frames)
    calib = frames.subset(4)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {
            "shipped_fp32": shipped,
            "fp32_opt": tmp / "opt.onnx",
            "int8_dyn": tmp / "dyn.onnx",
            "int8_static": tmp / "static.onnx",
        }
        optimize_onnx(shipped, paths["fp32_opt"], ("gelu", "slim", "ort"))
        base = tmp / "base.onnx"
        optimize_onnx(shipped, base, ("gelu", "slim"))
        quantize_int8(base, paths["int8_dyn"], "dynamic")
        quantize_int8(base, paths["int8_static"], "static", calib)
        ref = onnx_outputs(shipped, frames)
        acc = {
            k: compare_outputs(spec, frames, ref, onnx_outputs(p, frames))
            for k, p in paths.items()
            if k != "shipped_fp32"
        }
        sessions = {k: ort_session(p) for k, p in paths.items()}
        feeds = frames.feeds(0)
        lat = interleaved(
            {k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()}, repeat
        )
    t = lat["shipped_fp32"]["median_ms"]
    return {
        "model": "models/para_libero_spatial_t0 (trained)",
        "frames": f"{len(frames)} field-data frames ({frames.source}); static calibrated on "
        f"{len(calib)} of them",
        "latency": lat,
        "speedup_vs_shipped_fp32": {k: round(t / v["median_ms"], 2) for k, v in lat.items()},
        "accuracy_vs_shipped_fp32": acc,
    }


def benchmarks():
    return [
        ("latency_tiny64", lambda: _measure("tiny", 60)),
        ("latency_libero128", lambda: _measure("libero128", 40)),
        ("latency_vits224", lambda: _measure("vits224", 20)),
        ("shipped_libero128_int8", _shipped_int8),
    ]
