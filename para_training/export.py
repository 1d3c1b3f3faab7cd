"""`para-export CKPT -o model.onnx`: the deployable ONNX graph, with its contract inside.

The graph's inputs and outputs are the model's (`model.export_io(spec)`, from the model
registry); the head family written into the contract (`model.head`) tells the runtime how to
decode them, and `model.extra_inputs` which further inputs it must supply (camera_K,
T_world_cam, eef_pos, gripper_state). For the voxel_volume family (PARA) the graph is
(opset 18, fixed resolution, dynamic batch B):
  inputs   image            uint8   (B, H, W, 3)   RGB; normalisation is inside the graph
           start_keypoint   float32 (B, 3)         (u px, v px, h m) of the current EEF; (B, 4)
                                                   + the gripper command being executed
  outputs  voxel            int64   (B, T, 3)      argmax (z, y, x) over Z*Hg*Wg per step
           voxel_prob       float32 (B, T)         its softmax probability
           gripper_bin      int64   (B, T)
           rotation_bin     int64   (B, T) | (B, T, 3) for euler
           gripper_logits   float32 (B, T, n_grip)
           rotation_logits  float32 (B, T, n_rot)
           heatmap          float32 (B, T, Hg, Wg) max over z of the voxel probabilities
The model is exported through `export_friendly` (same function, fewer and fusable nodes);
`--optimize` writes ONNX Runtime's CPU-optimised graph instead, `--int8` a quantised copy,
each reported against PyTorch on random inputs and on real frames (`--frames`).
The PolicySpec is stored in metadata_props["para.policy_spec"]. Decoding classes to world
poses (ray/plane lift, bin centres) happens outside the graph in para_ros.core, where K and
the camera pose of the live camera are known.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from para_ros.core.contract import CONTROLLERS, ExecutorSpec, PolicySpec, TensorSpec
from para_ros.core.onnx_metadata import write_spec
from para_training.checkpoint import load_model
from para_training.policies.registry import lookup

# The graph I/O of the voxel_volume head family (PARA models); any model's own:
# model.export_io(spec).
INPUT_NAMES = ("image", "start_keypoint")
OUTPUT_NAMES = (
    "voxel",
    "voxel_prob",
    "gripper_bin",
    "rotation_bin",
    "gripper_logits",
    "rotation_logits",
    "heatmap",
)


class ExportWrapper(nn.Module):
    """The model plus its own decoding into the graph outputs (`model.predict`: what the
    runtime consumes), returned in `model.export_io(spec).output_names` order."""

    def __init__(self, model: nn.Module, spec: PolicySpec):
        super().__init__()
        self.model = model
        self.spec = spec
        self.output_names = model.export_io(spec).output_names

    def forward(self, *inputs: torch.Tensor):
        pred = self.model.predict(self.model(*inputs), self.spec)
        return tuple(pred[name] for name in self.output_names)


# -- export-friendly rewrites (same function, fewer and fusable ONNX nodes) ------------------
# Profiled on vits224/libero128 (bench/profile_ort.py): besides the GEMMs, the time goes to
# many small nodes: the LayerScale Muls, attention's q and k each scaled by sqrt(scale) and k
# transposed through Shape/Slice/Concat/Reshape, and nn.MultiheadAttention's generic path.


def _vit_attention_forward(self, x, attn_mask=None, is_causal=False):
    """timm Attention with the 1/sqrt(d) scale folded into the q weights (see
    export_friendly): plain q k^T -> softmax -> v, which ORT fuses (FusedMatMul transB)."""
    if attn_mask is not None or is_causal:
        raise ValueError("export_friendly attention has no mask")
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, h, N, hd) each
    attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


def _mha_forward(
    self,
    query,
    key,
    value,
    key_padding_mask=None,
    need_weights=False,
    attn_mask=None,
    average_attn_weights=True,
    is_causal=False,
):
    """nn.MultiheadAttention (batch_first, no masks) with the scale folded into the q rows of
    in_proj: one packed qkv Linear for self-attention, q + packed kv for cross-attention."""
    if key_padding_mask is not None or attn_mask is not None or is_causal:
        raise ValueError("export_friendly MultiheadAttention has no masks")
    B, L, D = query.shape
    h = self.num_heads
    hd = D // h
    if query is key and key is value:
        qkv = F.linear(query, self.export_in_w, self.export_in_b)
        q, k, v = qkv.reshape(B, L, 3, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
    else:  # separate buffers, not slices of in_proj: initializers the int8 pass can quantise
        S = key.shape[1]
        q = F.linear(query, self.export_q_w, self.export_q_b)
        q = q.reshape(B, L, h, hd).transpose(1, 2)
        kv = F.linear(key, self.export_kv_w, self.export_kv_b)
        k, v = kv.reshape(B, S, 2, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
    attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # (B, h, L, S)
    out = (attn @ v).transpose(1, 2).reshape(B, L, D)
    return self.out_proj(out), None


def export_friendly(model: nn.Module) -> nn.Module:
    """A copy of `model` computing the same function with an export-friendly graph:
    LayerScale folded into the preceding Linear, attention scale folded into q weights,
    attention written as plain matmul/softmax/matmul (timm ViT blocks and the head's
    nn.MultiheadAttention). Float results agree with the original to rounding (~1e-6)."""
    import copy
    import types

    from timm.layers import LayerScale
    from timm.models.vision_transformer import Attention, Block

    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, Block):
                for ls, lin in (
                    (mod.ls1, mod.attn.proj),
                    (mod.ls2, getattr(mod.mlp, "fc2", None)),
                ):
                    if isinstance(ls, LayerScale) and isinstance(lin, nn.Linear):
                        lin.weight.mul_(ls.gamma[:, None])
                        if lin.bias is not None:
                            lin.bias.mul_(ls.gamma)
                        if ls is mod.ls1:
                            mod.ls1 = nn.Identity()
                        else:
                            mod.ls2 = nn.Identity()
            plain_vit = (
                type(mod) is Attention
                and isinstance(mod.q_norm, nn.Identity)
                and isinstance(mod.k_norm, nn.Identity)
                and isinstance(getattr(mod, "norm", nn.Identity()), nn.Identity)
                and getattr(mod, "gate", None) is None
            )
            if plain_vit:
                C = mod.num_heads * mod.head_dim
                mod.qkv.weight[:C].mul_(mod.scale)
                if mod.qkv.bias is not None:
                    mod.qkv.bias[:C].mul_(mod.scale)
                mod.forward = types.MethodType(_vit_attention_forward, mod)
            elif (
                isinstance(mod, nn.MultiheadAttention)
                and mod.batch_first
                and mod._qkv_same_embed_dim
                and mod.in_proj_bias is not None
                and mod.bias_k is None
            ):
                D = mod.embed_dim
                scale = (D // mod.num_heads) ** -0.5
                w = mod.in_proj_weight.detach().clone()
                b = mod.in_proj_bias.detach().clone()
                w[:D] *= scale
                b[:D] *= scale
                mod.register_buffer("export_in_w", w)
                mod.register_buffer("export_in_b", b)
                mod.register_buffer("export_q_w", w[:D].clone())
                mod.register_buffer("export_q_b", b[:D].clone())
                mod.register_buffer("export_kv_w", w[D:].clone())
                mod.register_buffer("export_kv_b", b[D:].clone())
                mod.forward = types.MethodType(_mha_forward, mod)
    return m


def io_specs(spec: PolicySpec, model) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) tensor specs of the model's graph."""
    io = model.export_io(spec)
    return io.inputs, io.outputs


def example_feeds(spec: PolicySpec, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the spec's architecture, by graph input name."""
    return lookup(spec.model.architecture).example_inputs(spec, batch, seed)


def example_inputs(spec: PolicySpec, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the spec's architecture, in graph order."""
    return tuple(example_feeds(spec, batch, seed).values())


def export_onnx(
    ckpt_dir: str | Path,
    out: str | Path,
    model_id: str = "",
    executor: ExecutorSpec | None = None,
    friendly: bool = True,
) -> PolicySpec:
    """Export the checkpoint to ONNX with its PolicySpec inside; `executor` records the
    setting the model is to be executed with (default: the checkpoint's); `friendly`: the
    export_friendly rewrite of the model (False: the model's own modules, as before)."""
    model, spec = load_model(ckpt_dir)
    if executor is not None:
        spec = spec.replace(executor=executor)
    entry = lookup(spec.model.architecture)
    io = model.export_io(spec)
    wrapper = ExportWrapper(export_friendly(model) if friendly else model, spec).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.partial")
    batch = torch.export.Dim("batch", min=1, max=64)
    # A batch of 2: a batch-1 example lets the exporter specialise the batch dim (RECIPES).
    feeds = entry.example_inputs(spec, 2)
    # Traced with grad mode on (weights frozen instead of torch.no_grad()): under no_grad an
    # eval-mode nn.MultiheadAttention takes its native fast path, whose exported graph gave
    # other numbers than torch (measured on the trained libero128 model: voxel argmax
    # agreement 0.78, gripper logits off by 1.7); the standard path exports exactly (~2e-6).
    wrapper.requires_grad_(False)
    torch.onnx.export(
        wrapper,
        tuple(feeds[name] for name in io.input_names),
        str(tmp),
        dynamo=True,
        opset_version=18,
        external_data=False,
        input_names=list(io.input_names),
        output_names=list(io.output_names),
        # the forward takes *inputs: one dynamic-shape entry per positional input
        dynamic_shapes=(tuple({0: batch} for _ in io.input_names),),
        verbose=False,
    )
    spec = spec.replace(
        model=dataclasses.replace(
            spec.model,
            model_id=model_id or out.stem,
            inputs=io.inputs,
            outputs=io.outputs,
            head=entry.head,
            extra_inputs=io.extra_inputs,
        )
    )
    write_spec(tmp, spec)
    tmp.replace(out)
    return spec


def ort_session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def parity(onnx_path: str | Path, ckpt_dir: str | Path, batch: int = 3, seed: int = 1) -> dict:
    """ORT (CPU) vs PyTorch on random inputs: relative error of the float outputs and
    agreement of the argmax outputs."""
    model, spec = load_model(ckpt_dir)
    wrapper = ExportWrapper(model, spec).eval()
    io = model.export_io(spec)
    feeds = example_feeds(spec, batch, seed)
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(*(feeds[n] for n in io.input_names))]
    sess = ort_session(onnx_path)
    got = sess.run(list(io.output_names), {k: v.numpy() for k, v in feeds.items()})
    report: dict[str, float] = {}
    for name, r, g in zip(io.output_names, ref, got, strict=True):
        if r.dtype.kind == "f":
            report[f"{name}_rel_err"] = float(np.abs(r - g).max() / max(np.abs(r).max(), 1e-12))
        else:
            report[f"{name}_agreement"] = float((r == g).mean())
    return report


def torch_outputs(ckpt_dir: str | Path, frames) -> list[list[np.ndarray]]:
    """The checkpoint's PyTorch outputs (the model as trained, not export_friendly), frame by
    frame, batch 1, in OUTPUT_NAMES order."""
    model, spec = load_model(ckpt_dir)
    wrapper = ExportWrapper(model, spec).eval()
    names = model.export_io(spec).input_names
    out = []
    with torch.no_grad():
        for k in range(len(frames)):
            f = frames.feeds(k)
            res = wrapper(*(torch.from_numpy(f[n]) for n in names))
            out.append([t.numpy() for t in res])
    return out


def onnx_outputs(onnx_path: str | Path, frames) -> list[list[np.ndarray]]:
    sess = ort_session(onnx_path)
    return [sess.run(list(OUTPUT_NAMES), frames.feeds(k)) for k in range(len(frames))]


def real_frame_parity(onnx_path: str | Path, reference, frames) -> dict:
    """`onnx_path` vs `reference` on real frames: a checkpoint folder (PyTorch) or another
    .onnx (e.g. int8 vs its fp32): argmax agreement, float relative error, decoded 3D
    target distance (para_training.real_frames.compare_outputs)."""
    from para_ros.core.onnx_metadata import read_spec
    from para_training.real_frames import compare_outputs

    reference = Path(reference)
    if reference.is_dir():
        ref = torch_outputs(reference, frames)
    else:
        ref = onnx_outputs(reference, frames)
    return compare_outputs(read_spec(onnx_path), frames, ref, onnx_outputs(onnx_path, frames))


INT8_MODES = ("dynamic", "static")


def activation_matmuls(model) -> list[str]:
    """Names of the MatMul nodes whose second input is not a weight (attention's q k^T and
    p v): int8 on them costs accuracy and, on CPU, time (QLinearSoftmax around them)."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in consts]


class FrameReader:
    """onnxruntime.quantization CalibrationDataReader over real frames (one per batch)."""

    def __init__(self, frames):
        self.frames = frames
        self.k = 0

    def get_next(self):
        if self.k >= len(self.frames):
            return None
        self.k += 1
        return self.frames.feeds(self.k - 1)

    def rewind(self):
        self.k = 0


def quantize_int8(
    onnx_path: str | Path,
    out: str | Path,
    mode: str = "dynamic",
    frames=None,
    per_channel: bool = True,
) -> Path:
    """int8 weights of the MatMuls with a weight operand (ViT and head linears); attention's
    activation x activation MatMuls, convolutions (ConvInteger is slower than fp32 Conv on
    CPU: profiled), softmax and the decode stay float.

    dynamic  activations quantised per call from their own range (no calibration)
    static   QDQ with activation ranges calibrated on `frames` (para_training.real_frames,
             frames of the training data); ORT runs QLinearMatMul / fused int8 kernels

    Weights are 7-bit (reduce_range, values in [-64, 64]) so that the graph gives the same
    answers on every x86 CPU: without VNNI, ORT's u8 x s8 kernels add pairs of products in
    int16 with saturation (vpmaddubsw), and 2 x 255 x 127 overflows it where 2 x 255 x 64 =
    32640 does not (onnxruntime.quantization's own note on reduce_range). Seen in CI on a
    CPU without VNNI with 8-bit weights: the shipped model's dynamic int8 agreed with fp32 on
    0.75 of the argmax voxels, against 1.0 on an AVX-512 VNNI machine.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from para_ros.core.onnx_metadata import read_spec

    if mode not in INT8_MODES:
        raise ValueError(f"unknown int8 mode {mode!r}; known: {list(INT8_MODES)}")
    spec = read_spec(onnx_path)
    out = Path(out)
    exclude = activation_matmuls(onnx.load(str(onnx_path)))
    common = dict(
        per_channel=per_channel,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
        weight_type=QuantType.QInt8,
        extra_options={"MatMulConstBOnly": True},
    )
    if mode == "dynamic":
        quantize_dynamic(str(onnx_path), str(out), **common)
    else:
        if frames is None or len(frames) == 0:
            raise ValueError("static int8 needs calibration frames (para_training.real_frames)")
        quantize_static(
            str(onnx_path),
            str(out),
            FrameReader(frames),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            **common,
        )
    write_spec(out, spec.replace(model=dataclasses.replace(spec.model, model_id=out.stem)))
    return out


def interleaved_latency(paths: dict, feeds: dict, runs: int = 20) -> dict:
    """Median ms per model, one thread, runs interleaved so that load on a shared machine
    hits every variant alike."""
    sessions = {k: ort_session(p) for k, p in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(2):
        for s in sessions.values():
            s.run(None, feeds)
    for _ in range(runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def _fmt(rep: dict) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rep.items()
    )


def add_executor_flags(ap: argparse.ArgumentParser) -> None:
    """para-export's executor flags (the contract's ExecutorSpec fields)."""
    d = ExecutorSpec()
    ex = ap.add_argument_group(
        "executor",
        "the setting the model is executed with, written into its PolicySpec "
        "(contract ExecutorSpec); deployment uses it unless a parameter overrides it",
    )
    ex.add_argument("--execute-step", type=int, default=d.execute_step, help="chunk step sent")
    ex.add_argument("--max-step", type=float, default=d.max_step_m, help="metres per command")
    ex.add_argument("--stall-patience", type=int, default=d.stall_patience, help="0 = off")
    ex.add_argument("--use-rotation", action="store_true", help="execute predicted rotation")
    ex.add_argument(
        "--controller",
        default=d.controller,
        choices=CONTROLLERS,
        help="reach_then_observe: each target reached before the next frame (lock-step); "
        "streaming: a tracking controller, commands also bounded by the speeds below",
    )
    ex.add_argument(
        "--max-speed",
        type=float,
        default=None,
        help="metres per second a streaming controller is asked for at most (default: "
        "--max-step / the model's window.dt)",
    )
    ex.add_argument(
        "--max-angular-speed",
        type=float,
        default=d.max_angular_speed_rps,
        help="radians per second a streaming controller is asked for at most",
    )


def executor_from_args(args: argparse.Namespace) -> ExecutorSpec:
    """The ExecutorSpec the flags of `add_executor_flags` give, validated (SpecError, a
    ValueError, names the key). Without --max-speed its max_speed_mps is None: the exported
    PolicySpec fills in max_step_m / window.dt from the checkpoint's window."""
    executor = ExecutorSpec(
        execute_step=args.execute_step,
        max_step_m=args.max_step,
        stall_patience=args.stall_patience,
        zero_rotation=not args.use_rotation,
        controller=args.controller,
        max_speed_mps=args.max_speed,
        max_angular_speed_rps=args.max_angular_speed,
    )
    executor.validate("executor")
    return executor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("checkpoint", help="checkpoint folder (model.safetensors + config.json)")
    ap.add_argument("-o", "--output", required=True, help="output .onnx")
    ap.add_argument("--model-id", default="", help="id published by the node (default: name)")
    ap.add_argument(
        "--optimize",
        action="store_true",
        help="write the CPU-optimised graph (GELU fused, onnxslim, ONNX Runtime's extended "
        "optimisations saved; com.microsoft ops: ORT CPU/CUDA). Without it the graph has "
        "standard ops only (TensorRT takes it whole)",
    )
    ap.add_argument(
        "--int8",
        nargs="?",
        const="dynamic",
        choices=INT8_MODES,
        help="also write <output>.int8.onnx (weight MatMuls in int8; dynamic by default, "
        "static: calibrated on --frames); kept only where faster than fp32 on this machine",
    )
    ap.add_argument(
        "--frames",
        default="",
        help="data for the real-frame parity report and static calibration (any format "
        "para_ros.data reads; default: the repository's field data, where present)",
    )
    ap.add_argument("--frames-n", type=int, default=48, help="real frames to use")
    ap.add_argument("--keep-slow-int8", action="store_true", help="keep int8 even when not faster")
    add_executor_flags(ap)
    args = ap.parse_args(argv)
    out = Path(args.output)
    try:
        executor = executor_from_args(args)
        spec = export_onnx(args.checkpoint, out, args.model_id, executor)
        if args.optimize:
            from para_training.optimize import optimize_onnx

            optimize_onnx(out, out, ("gelu", "slim", "ort"), model_id=spec.model.model_id)
        frames = None
        from para_training.real_frames import default_field_data, load_frames

        # real frames carry image + start_keypoint: the voxel_volume family's inputs
        real = spec.model.head == "voxel_volume" and not spec.model.extra_inputs
        if real and (args.frames or default_field_data() is not None):
            frames = load_frames(spec, args.frames or None, args.frames_n)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"para-export: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB{', optimised' if args.optimize else ''}"
        f"), T={spec.window.steps} Z={spec.height.n_bins} grid {spec.grid.height}x"
        f"{spec.grid.width} image {spec.image.height}x{spec.image.width}"
    )
    print("parity fp32 (ORT CPU vs torch, random inputs): " + _fmt(parity(out, args.checkpoint)))
    if frames is not None:
        rep = real_frame_parity(out, args.checkpoint, frames)
        print(
            f"parity fp32 (ORT CPU vs torch, {len(frames)} real frames of {frames.source}): "
            + _fmt(rep)
        )
    if args.int8:
        import tempfile

        from para_training.optimize import optimize_onnx

        if args.int8 == "static" and frames is None:
            print(
                "para-export: --int8 static needs --frames (no field data here)", file=sys.stderr
            )
            return 2
        q = out.with_suffix(".int8.onnx")
        with tempfile.TemporaryDirectory() as tmp:
            # quantise the standard-op graph (GELU fused, slimmed), not ORT's saved one
            base = Path(tmp) / "base.onnx"
            export_onnx(args.checkpoint, base, spec.model.model_id, executor)
            optimize_onnx(base, base, ("gelu", "slim"))
            calib = frames.subset(2) if frames is not None else None
            quantize_int8(base, q, args.int8, calib)
        feeds = frames.feeds(0) if frames is not None else None
        if feeds is None:
            feeds = {k: v.numpy() for k, v in example_feeds(spec, 1).items()}
        ms = interleaved_latency({"fp32": out, "int8": q}, feeds)
        print(
            f"latency (1 thread, median, interleaved): fp32 {ms['fp32']:.2f} ms, int8 "
            f"{ms['int8']:.2f} ms ({ms['fp32'] / ms['int8']:.2f}x)"
        )
        if ms["int8"] >= ms["fp32"] and not args.keep_slow_int8:
            q.unlink()
            print(f"int8 not faster than fp32 on this machine: {q} not kept (--keep-slow-int8)")
            return 0
        print(f"wrote {q} ({q.stat().st_size / 1e6:.1f} MB, {args.int8})")
        print(
            "parity int8 (ORT CPU vs torch fp32, random inputs): "
            + _fmt(parity(q, args.checkpoint))
        )
        if frames is not None:
            rep = real_frame_parity(q, args.checkpoint, frames)
            print(f"parity int8 (vs torch fp32, {len(frames)} real frames): " + _fmt(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
