"""Offline graph optimisation of an exported PARA model: one .onnx file, PolicySpec inside.

Steps (each optional, in this order):
  slim         onnxslim: constant folding, dead/duplicate node removal, shape cleanup
  transformer  onnxruntime.transformers.optimizer: fuse attention, LayerNorm, GELU, bias adds
               into ORT contrib ops (com.microsoft Attention, SkipLayerNormalization, BiasGelu)
  ort          ONNX Runtime's own optimiser run once and its result saved
               (`SessionOptions.optimized_model_filepath`) at ORT_ENABLE_EXTENDED: the
               portable level (ENABLE_ALL adds layout transforms tied to this CPU's ISA)

The result loads in plain onnxruntime (CPU, CUDA, TensorRT EPs ship the contrib ops on CPU
and CUDA; TensorRT takes the standard-op file better: keep the exported one for it).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from para_ros.core.onnx_metadata import read_spec, write_spec

STEPS = ("slim", "transformer", "ort")


def _slim(src: Path, dst: Path) -> None:
    import onnxslim

    onnxslim.slim(str(src), str(dst))


def _transformer(src: Path, dst: Path) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    opts = FusionOptions("vit")
    # num_heads/hidden_size 0: read from the graph's reshape constants per attention block
    m = optimize_model(
        str(src),
        model_type="vit",
        num_heads=0,
        hidden_size=0,
        optimization_options=opts,
        opt_level=0,
        use_gpu=False,
        only_onnxruntime=False,
    )
    m.save_model_to_file(str(dst), use_external_data_format=False)


def _ort(src: Path, dst: Path, level: str = "extended") -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    opts.optimized_model_filepath = str(dst)
    opts.intra_op_num_threads = 1
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


def optimize_onnx(
    src: str | Path,
    out: str | Path,
    steps: tuple[str, ...] = ("transformer", "ort"),
    ort_level: str = "extended",
    model_id: str = "",
) -> Path:
    """Write the optimised graph of `src` to `out` with `src`'s PolicySpec (model_id: out's
    stem unless given)."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown optimisation step(s) {unknown}; known: {list(STEPS)}")
    src, out = Path(src), Path(out)
    spec = read_spec(src)
    with tempfile.TemporaryDirectory() as tmp:
        cur = src
        for k, step in enumerate(steps):
            nxt = Path(tmp) / f"{k}_{step}.onnx"
            if step == "slim":
                _slim(cur, nxt)
            elif step == "transformer":
                _transformer(cur, nxt)
            else:
                _ort(cur, nxt, ort_level)
            cur = nxt
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_suffix(".onnx.partial")
        part.write_bytes(cur.read_bytes())
    model = dataclasses.replace(spec.model, model_id=model_id or out.stem)
    write_spec(part, spec.replace(model=model))
    part.replace(out)
    return out
