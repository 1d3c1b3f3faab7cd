"""Inference latency of one exported model, batch 1, 1 thread, same process and inputs:
torch eager vs ONNX Runtime fp32 vs ONNX Runtime int8 (dynamic weight quantisation).

Weights are random (latency does not depend on them; int8 accuracy does, see para-export's
parity report on trained weights).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import timeit


def _measure(preset: str, repeat: int) -> dict:
    import onnxruntime as ort
    import torch

    from para_ros.data.synthetic import make_episodes
    from para_training import checkpoint as ckpt
    from para_training.configs import DataConfig, get_preset
    from para_training.export import ExportWrapper, example_inputs, export_onnx, quantize_int8
    from para_training.train import make_spec

    torch.set_num_threads(1)
    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    eps = make_episodes(2, n_frames=10, image_hw=(data.image_height, data.image_width))
    spec, _ = make_spec(eps, data, p["model"], log=lambda *_: None)
    model = ckpt.build_model(spec).eval()
    with tempfile.TemporaryDirectory() as tmp:
        d = ckpt.save_checkpoint(Path(tmp) / "ck", model, spec)
        fp32 = Path(tmp) / "m.onnx"
        export_onnx(d, fp32)
        int8 = quantize_int8(fp32, Path(tmp) / "m.int8.onnx")
        image, start = example_inputs(spec, 1)
        wrapper = ExportWrapper(model, spec).eval()
        feeds = {"image": image.numpy(), "start_keypoint": start.numpy()}
        res = {
            "preset": preset,
            "image": [spec.image.height, spec.image.width],
            "batch": 1,
            "threads": 1,
            "fp32_MB": fp32.stat().st_size / 1e6,
            "int8_MB": int8.stat().st_size / 1e6,
        }

        def run_torch():
            with torch.no_grad():
                wrapper(image, start)

        res["torch_eager"] = timeit(run_torch, repeat=repeat, warmup=2)
        for name, path in (("ort_fp32", fp32), ("ort_int8", int8)):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            res[name] = timeit(lambda s=sess: s.run(None, feeds), repeat=repeat, warmup=2)
    t = res["torch_eager"]["median_ms"]
    res["speedup_ort_fp32_vs_torch"] = t / res["ort_fp32"]["median_ms"]
    res["speedup_ort_int8_vs_torch"] = t / res["ort_int8"]["median_ms"]
    return res


def benchmarks():
    return [
        ("latency_tiny64", lambda: _measure("tiny", 50)),
        ("latency_libero128", lambda: _measure("libero128", 30)),
        ("latency_vits224", lambda: _measure("vits224", 15)),
    ]
