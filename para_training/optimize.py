"""Offline graph optimisation of an exported PARA model: one .onnx file, PolicySpec inside.

Steps (each optional, in this order):
  gelu         the exporter's 5-node erf GELU -> com.microsoft Gelu (ORT then fuses the bias)
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

STEPS = ("gelu", "slim", "transformer", "ort")


def fuse_gelu(model) -> int:
    """Replace the exporter's erf GELU, x * (0.5 * (1 + erf(x / sqrt 2))) in any operand order
    (5 nodes, which ORT's GeluFusion does not match as exported), with one com.microsoft Gelu
    node (ORT then folds a preceding bias Add into BiasGelu). Returns the number fused."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}

    def scalar(name, value):
        v = consts.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(())) - value) < 1e-6

    def other(node, name):
        return node.input[1] if node.input[0] == name else node.input[0]

    def only(name):
        c = consumers.get(name, [])
        return c[0] if len(c) == 1 else None

    remove, add = set(), []
    for div in g.node:
        if div.op_type != "Div" or not scalar(div.input[1], float(np.sqrt(2.0))):
            continue
        x = div.input[0]
        erf = only(div.output[0])
        add1 = erf and erf.op_type == "Erf" and only(erf.output[0])
        if not (add1 and add1.op_type == "Add" and scalar(other(add1, erf.output[0]), 1.0)):
            continue
        m1 = only(add1.output[0])
        if not (m1 and m1.op_type == "Mul"):
            continue
        a = other(m1, add1.output[0])
        if scalar(a, 0.5):  # (0.5 * (1 + erf)) * x
            m2 = only(m1.output[0])
            ok = m2 is not None and m2.op_type == "Mul" and other(m2, m1.output[0]) == x
        elif a == x:  # (x * (1 + erf)) * 0.5
            m2 = only(m1.output[0])
            ok = m2 is not None and m2.op_type == "Mul" and scalar(other(m2, m1.output[0]), 0.5)
        else:  # (0.5 * x) * (1 + erf)
            half = producer.get(a)
            ok = (
                half is not None
                and half.op_type == "Mul"
                and x in half.input
                and scalar(other(half, x), 0.5)
                and only(a) is m1
            )
            m2 = m1
            if ok:
                remove.add(id(half))
        if not ok:
            continue
        for n in (div, erf, add1, m1, m2):
            remove.add(id(n))
        add.append(
            (
                div,
                helper.make_node(
                    "Gelu", [x], [m2.output[0]], domain="com.microsoft", name=f"{div.name}_gelu"
                ),
            )
        )
    if not add:
        return 0
    first = {id(d): node for d, node in add}
    nodes = []
    for n in g.node:
        if id(n) in first:
            nodes.append(first[id(n)])
        if id(n) not in remove:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(add)


def _gelu(src: Path, dst: Path) -> None:
    import onnx

    model = onnx.load(str(src))
    fuse_gelu(model)
    onnx.save(model, str(dst))


def _slim(src: Path, dst: Path) -> None:
    import contextlib
    import io

    import onnxslim

    with contextlib.redirect_stdout(io.StringIO()):  # its summary table: not our report
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
            if step == "gelu":
                _gelu(cur, nxt)
            elif step == "slim":
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
