"""Issue 16: the export-friendly graph, offline optimisation, int8 that pays, real-frame
parity, and the GPU path of OnnxPolicy exercised on CPU (fallback warning, IO binding)."""

from __future__ import annotations

import warnings
from unittest import mock

import numpy as np
import pytest

from tests.ros_helpers.env import REPO

FIELD = REPO.parent / "shared" / "field-data"
SHIPPED = REPO / "models" / "para_libero_spatial_t0" / "model.onnx"
needs_field = pytest.mark.skipif(not FIELD.is_dir(), reason=f"{FIELD} not present")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(checkpoint dir, exported .onnx) of a random-weight tiny model with non-zero biases
    and LayerScale (as trained models have)."""
    from bench.models import build_checkpoint
    from para_training.export import export_onnx

    tmp = tmp_path_factory.mktemp("tiny16")
    ck = build_checkpoint("tiny", tmp)
    path = tmp / "tiny.onnx"
    export_onnx(ck, path)
    return ck, path


def _int8_weight_range(path) -> tuple[int, int]:
    """(min, max) over the graph's int8 initializers (the quantised weights)."""
    import onnx
    from onnx import numpy_helper

    ws = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    assert ws, "no int8 weights"
    return int(min(w.min() for w in ws)), int(max(w.max() for w in ws))


def _ops(path) -> dict[str, int]:
    import onnx

    out: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def test_export_friendly_same_function_fewer_nodes(tiny, tmp_path):
    import torch
    from timm.layers import LayerScale

    from para_training.checkpoint import load_model
    from para_training.export import ExportWrapper, example_inputs, export_friendly, export_onnx

    ck, friendly = tiny
    model, spec = load_model(ck)
    fm = export_friendly(model)
    assert any(isinstance(m, LayerScale) for m in model.modules())
    assert not any(isinstance(m, LayerScale) for m in fm.modules())
    img, st = example_inputs(spec, 2, seed=3)
    with torch.no_grad():
        ref = ExportWrapper(model, spec)(img, st)
        got = ExportWrapper(fm, spec)(img, st)
    for r, g in zip(ref, got, strict=True):
        if r.dtype.is_floating_point:
            assert float((r - g).abs().max() / r.abs().max()) < 1e-5
        else:
            assert torch.equal(r, g)
    before = tmp_path / "before.onnx"
    export_onnx(ck, before, friendly=False)
    n_before, n_after = sum(_ops(before).values()), sum(_ops(friendly).values())
    assert n_after < 0.8 * n_before, (n_before, n_after)


def test_fuse_gelu_replaces_every_erf_gelu(tiny):
    import onnx

    from para_training.optimize import fuse_gelu

    _, path = tiny
    model = onnx.load(str(path))
    n_erf = sum(n.op_type == "Erf" for n in model.graph.node)
    assert n_erf > 0
    assert fuse_gelu(model) == n_erf
    assert not any(n.op_type == "Erf" for n in model.graph.node)
    assert sum(n.op_type == "Gelu" for n in model.graph.node) == n_erf
    onnx.checker.check_model(model)


def test_optimized_graph_keeps_spec_and_parity(tiny, tmp_path):
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import parity
    from para_training.optimize import optimize_onnx

    ck, path = tiny
    out = optimize_onnx(path, tmp_path / "opt.onnx", ("gelu", "slim", "ort"))
    spec = read_spec(out)
    assert spec.model.model_id == "opt"
    assert spec.image == read_spec(path).image
    assert sum(_ops(out).values()) < sum(_ops(path).values())
    assert "Erf" not in _ops(out)
    rep = parity(out, ck)
    for k, v in rep.items():
        if k.endswith("agreement"):
            assert v == 1.0, k
        else:
            assert v < 1e-4, (k, v)
    with pytest.raises(ValueError, match="unknown optimisation step"):
        optimize_onnx(path, tmp_path / "x.onnx", ("fuse_everything",))


@needs_field
def test_real_frames_from_field_data(tiny):
    from para_ros.core.onnx_metadata import read_spec
    from para_training.real_frames import load_frames

    spec = read_spec(tiny[1])  # 64 px
    fr = load_frames(spec, n=12)
    assert fr.image.shape == (12, 64, 64, 3) and fr.image.dtype == np.uint8
    assert fr.start_keypoint.shape == (12, 3)
    u, v = fr.start_keypoint[:, 0], fr.start_keypoint[:, 1]
    assert ((u >= 0) & (u < 64) & (v >= 0) & (v < 64)).all()
    # K of the 128 px agentview (f = 154.51, c = 64) scaled to 64 px
    np.testing.assert_allclose(
        fr.K_model[0][[0, 1, 0, 1], [0, 1, 2, 2]], [77.25, 77.25, 32, 32], atol=0.01
    )
    assert fr.image.std() > 10  # real content, not a blank frame
    assert len(fr.subset(3)) == 4


@needs_field
def test_real_frame_parity_torch_vs_onnx(tiny):
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import real_frame_parity
    from para_training.real_frames import load_frames

    ck, path = tiny
    fr = load_frames(read_spec(path), n=16)
    rep = real_frame_parity(path, ck, fr)
    assert rep["frames"] == 16
    assert rep["voxel_agreement"] == 1.0
    assert rep["gripper_agreement"] == 1.0 and rep["rotation_agreement"] == 1.0
    assert rep["voxel_prob_rel_err"] < 1e-4 and rep["heatmap_rel_err"] < 1e-4
    assert rep["target_dist_mm_max"] == 0.0


def test_int8_quantises_weight_matmuls_only(tiny, tmp_path):
    import onnx

    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import activation_matmuls, quantize_int8

    _, path = tiny
    model = onnx.load(str(path))
    # the 2-D linears of the start-keypoint MLP are Gemm: quantised too (as MatMulInteger)
    n_matmul = sum(n.op_type in ("MatMul", "Gemm") for n in model.graph.node)
    n_act = len(activation_matmuls(model))
    assert n_act > 0
    q = quantize_int8(path, tmp_path / "q.int8.onnx", "dynamic")
    ops = _ops(q)
    assert ops.get("MatMulInteger", 0) == n_matmul - n_act
    assert ops.get("MatMul", 0) == n_act  # attention's activation x activation stay float
    assert "ConvInteger" not in ops  # profiled slower than fp32 Conv on CPU
    assert read_spec(q).model.model_id == "q.int8"
    with pytest.raises(ValueError, match="calibration frames"):
        quantize_int8(path, tmp_path / "s.onnx", "static")
    with pytest.raises(ValueError, match="unknown int8 mode"):
        quantize_int8(path, tmp_path / "s.onnx", "int4")


@needs_field
def test_int8_on_the_shipped_model_agrees_on_real_frames(tmp_path):
    """Trained weights, real frames: int8 (dynamic and static) vs the shipped fp32 graph.

    Bounds measured on the model shipped 2026-12-06 (32 frames x 4 steps): voxel agreement
    0.953 dynamic, 0.945 static, every disagreement a neighbouring voxel or height bin (mean
    1.3 / 1.6 mm, max 36 / 38 mm); the model before reached 0.97. int8 is an export option
    (`para-export --int8`), not what is shipped."""
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import onnx_outputs, quantize_int8
    from para_training.optimize import optimize_onnx
    from para_training.real_frames import compare_outputs, load_frames

    spec = read_spec(SHIPPED)
    fr = load_frames(spec, n=32)
    base = optimize_onnx(SHIPPED, tmp_path / "base.onnx", ("gelu", "slim"))
    ref = onnx_outputs(SHIPPED, fr)
    fp32 = compare_outputs(spec, fr, ref, onnx_outputs(base, fr))
    assert fp32["voxel_agreement"] == 1.0 and fp32["voxel_prob_rel_err"] < 1e-4
    dyn = quantize_int8(base, tmp_path / "dyn.onnx", "dynamic")
    assert _int8_weight_range(dyn) == (-64, 64)  # 7-bit: no int16 saturation without VNNI
    rep = compare_outputs(spec, fr, ref, onnx_outputs(dyn, fr))
    assert rep["voxel_agreement"] >= 0.95, rep
    assert rep["gripper_agreement"] >= 0.97 and rep["rotation_agreement"] >= 0.97, rep
    assert rep["target_dist_mm_mean"] < 5.0 and rep["target_dist_mm_max"] < 50.0, rep
    st = quantize_int8(base, tmp_path / "st.onnx", "static", fr.subset(4))
    assert "QuantizeLinear" in _ops(st)
    assert _int8_weight_range(st) == (-64, 64)
    rep = compare_outputs(spec, fr, ref, onnx_outputs(st, fr))
    assert rep["voxel_agreement"] >= 0.94, rep
    assert rep["target_dist_mm_mean"] < 5.0 and rep["target_dist_mm_max"] < 50.0, rep


@needs_field
def test_para_export_cli_optimize_int8_report(tiny, tmp_path, capsys):
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import main

    ck, _ = tiny
    out = tmp_path / "m.onnx"
    assert main([str(ck), "-o", str(out), "--optimize", "--int8", "--keep-slow-int8"]) == 0
    text = capsys.readouterr().out
    assert "parity fp32 (ORT CPU vs torch, 48 real frames" in text
    assert "parity int8 (vs torch fp32, 48 real frames)" in text
    assert "target_dist_mm_mean" in text and "latency (1 thread" in text
    assert read_spec(out).model.model_id == "m"
    assert read_spec(out.with_suffix(".int8.onnx")).model.model_id == "m.int8"
    assert "Gelu" in _ops(out) and "Erf" not in _ops(out)


# -- the runtime's provider handling and IO binding, on CPU ------------------------------


def _obs(spec):
    from para_ros.runtime.onnx_policy import Observation

    H, W = spec.image.height, spec.image.width
    K = np.array([[W, 0, W / 2], [0, H, H / 2], [0, 0, 1.0]])
    T = np.eye(4)
    T[:3, 3] = [0, 0, 1.0]
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])  # camera 1 m above, looking down
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (2 * H, 2 * W, 3), dtype=np.uint8)
    return Observation(img, 2 * K * [[1], [1], [0.5]], T, np.array([0.05, 0.02, 0.1]))


def test_io_binding_on_cpu_same_result(tiny):
    from para_ros.runtime.onnx_policy import OnnxPolicy

    _, path = tiny
    plain = OnnxPolicy(str(path), ["CPUExecutionProvider"])
    bound = OnnxPolicy(str(path), ["CPUExecutionProvider"], io_binding=True)
    assert not plain.io_binding and bound.io_binding and bound.device == ("cpu", 0)
    obs = _obs(bound.spec)
    for heat in (False, True):
        a, b = plain.infer(obs, with_heatmap=heat), bound.infer(obs, with_heatmap=heat)
        np.testing.assert_array_equal(a.chunk.voxel, b.chunk.voxel)
        np.testing.assert_array_equal(a.chunk.confidence, b.chunk.confidence)
        assert (a.heatmap is None) == (not heat) and (b.heatmap is None) == (not heat)
        if heat:
            np.testing.assert_array_equal(a.heatmap, b.heatmap)
    # a second frame goes through the same preallocated buffers
    obs2 = _obs(bound.spec)
    obs2 = type(obs2)(obs2.image[::-1].copy(), obs2.K, obs2.T_world_cam, obs2.eef_pos)
    np.testing.assert_array_equal(plain.infer(obs2).chunk.voxel, bound.infer(obs2).chunk.voxel)
    assert bound.warmup(2) > 0


def test_gpu_requested_but_session_on_cpu_warns(tiny):
    """onnxruntime-gpu lists CUDA/TensorRT even without a GPU and silently runs on CPU: the
    policy checks session.get_providers() and warns (simulated: CUDA listed as available)."""
    import onnxruntime as ort

    from para_ros.runtime.onnx_policy import OnnxPolicy, ProviderFallbackWarning

    _, path = tiny
    real = ort.get_available_providers()
    with (
        mock.patch.object(
            ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real]
        ),
        pytest.warns(ProviderFallbackWarning, match="fell back to"),
    ):
        pol = OnnxPolicy(str(path), ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert pol.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in pol.fallback
    assert not pol.io_binding  # CPU session: plain run


def test_cpu_only_build_no_warning_but_says_why(tiny):
    from para_ros.runtime.onnx_policy import OnnxPolicy

    _, path = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pol = OnnxPolicy(str(path))  # default: TensorRT, CUDA, CPU
        cpu = OnnxPolicy(str(path), ["CPUExecutionProvider"])
    assert pol.providers == ["CPUExecutionProvider"]
    assert "no GPU providers" in pol.fallback and "para_ros[gpu]" in pol.fallback
    assert cpu.fallback == ""


def test_provider_options_tensorrt_cache_fp16_cuda_fallback(tmp_path, monkeypatch):
    from para_ros.runtime.onnx_policy import DEFAULT_PROVIDERS, provider_options

    opts = dict(provider_options(DEFAULT_PROVIDERS, str(tmp_path / "trt"), fp16=True))
    assert list(opts) == list(DEFAULT_PROVIDERS)
    trt = opts["TensorrtExecutionProvider"]
    assert trt["trt_engine_cache_enable"] == "1"
    assert trt["trt_engine_cache_path"] == str(tmp_path / "trt")
    assert trt["trt_timing_cache_path"] == str(tmp_path / "trt")
    assert trt["trt_fp16_enable"] == "1"
    assert opts["CUDAExecutionProvider"]["device_id"] == "0"
    assert opts["CPUExecutionProvider"] == {}
    monkeypatch.setenv("PARA_TRT_CACHE", str(tmp_path / "env"))
    trt = dict(provider_options(["TensorrtExecutionProvider"]))["TensorrtExecutionProvider"]
    assert trt["trt_engine_cache_path"] == str(tmp_path / "env")
    assert trt["trt_fp16_enable"] == "0"


def test_profile_ort_per_op_type(tiny):
    from bench.profile_ort import format_profile, profile

    rep = profile(tiny[1], runs=3, warmup=1)
    assert rep["runs"] == 3 and rep["node_ms"] > 0
    ops = {r["op"]: r for r in rep["ops"]}
    assert ops["MatMul"]["nodes"] > 0 and ops["MatMul"]["ms"] > 0
    assert abs(sum(r["share"] for r in rep["ops"]) - 1.0) < 1e-6
    assert "MatMul" in format_profile(rep)
