"""Head families and declared runtime inputs (pure core + OnnxPolicy, no torch): the runtime
decodes by `spec.model.head` and feeds `spec.model.extra_inputs` from the Observation; older
v2 files load with the defaults and the shipped model decodes exactly as before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from para_ros.core.action_codec import Codecs
from para_ros.core.contract import (
    HEAD_FAMILIES,
    GraphInputSpec,
    PolicySpec,
    SpecError,
    TensorSpec,
)
from para_ros.core.heads import HEADS, decode_outputs

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "para_libero_spatial_t0" / "model.onnx"
REFERENCE = REPO / "tests" / "data" / "shipped_infer_reference.npz"
FIELD = REPO.parent / "shared" / "field-data" / "libero_official_layout"


def _spec(**model) -> PolicySpec:
    s = PolicySpec()
    return s.replace(model=dataclasses.replace(s.model, **model))


def test_the_decoder_table_covers_every_head_family():
    assert tuple(HEADS) == HEAD_FAMILIES


def test_an_older_v2_file_without_head_or_extra_inputs_gets_the_defaults():
    d = PolicySpec().to_dict()
    del d["model"]["head"], d["model"]["extra_inputs"]
    spec = PolicySpec.from_dict(d)
    assert spec.model.head == "voxel_volume" and spec.model.extra_inputs == ()
    # other keys stay required
    del d["model"]["outputs"]
    with pytest.raises(SpecError, match=r"`model.outputs`: missing key"):
        PolicySpec.from_dict(d)


def test_unknown_head_and_unknown_declared_input_name_the_key_path():
    d = PolicySpec().to_dict()
    d["model"]["head"] = "voxel_volum"
    with pytest.raises(SpecError, match=r"`model.head`: unknown head family.*voxel_volume"):
        PolicySpec.from_dict(d)
    d = PolicySpec().to_dict()
    d["model"]["extra_inputs"] = [
        {"name": "eef_pose", "dtype": "float32", "shape": [3], "units": "m", "frame": "world"}
    ]
    with pytest.raises(SpecError, match=r"`model.extra_inputs\[0\].name`.*did you mean eef_pos"):
        PolicySpec.from_dict(d)
    d["model"]["extra_inputs"][0]["name"] = "eef_pos"
    d["model"]["extra_inputs"][0]["shape"] = [4]
    with pytest.raises(SpecError, match=r"`model.extra_inputs\[0\].shape`"):
        PolicySpec.from_dict(d)
    d["model"]["extra_inputs"][0]["shape"] = [3]
    spec = PolicySpec.from_dict(d)
    assert spec.model.extra_inputs == (GraphInputSpec.known("eef_pos"),)
    assert PolicySpec.from_json(spec.to_json()) == spec


def test_world_regression_decodes_positions_as_they_are():
    spec = _spec(head="world_regression")
    T = spec.window.steps
    K = np.array([[100.0, 0, 112], [0, 100.0, 112], [0, 0, 1]])
    T_wc = np.eye(4)
    pos = np.stack([np.linspace(-0.1, 0.1, T), np.zeros(T), np.full(T, 1.0)], -1)  # (T, 3)
    out = {
        "position": pos.astype(np.float32),
        "gripper_bin": np.zeros(T, np.int64),
        "rotation_bin": np.full(T, 3, np.int64),
    }
    chunk = decode_outputs(spec, Codecs.from_spec(spec), out, K, T_wc)
    np.testing.assert_allclose(chunk.positions, pos, atol=1e-6)
    assert chunk.valid.all() and (chunk.confidence == 1.0).all()
    np.testing.assert_allclose(chunk.pixels[:, 0], 112 + 100 * pos[:, 0], atol=1e-4)
    assert chunk.euler.shape == (T, 3) and chunk.quat_xyzw.shape == (T, 4)


def _regression_graph(spec: PolicySpec, offset: float = 0.01):
    """A world_regression graph: position[t] = eef_pos + offset * (t + 1) on x; constant
    bins. Inputs: image and the declared eef_pos."""
    from onnx import TensorProto, helper, numpy_helper

    from para_ros.core.onnx_metadata import attach_spec

    T = spec.window.steps
    H, W = spec.image.height, spec.image.width
    step = np.zeros((1, T, 3), np.float32)
    step[0, :, 0] = offset * (np.arange(T) + 1)
    inits = [
        numpy_helper.from_array(step, "c_step"),
        numpy_helper.from_array(np.array([-1, 1, 3], np.int64), "shape_b13"),
        numpy_helper.from_array(np.zeros((1, T), np.int64), "c_bins"),
        numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero_f"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape_b11"),
    ]
    nodes = [
        helper.make_node("Reshape", ["eef_pos", "shape_b13"], ["eef_b13"]),
        # image kept live: position += 0 * mean(image)
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["image_f"], ["image_m"], keepdims=1),
        helper.make_node("Mul", ["image_m", "zero_f"], ["image_0"]),
        helper.make_node("Reshape", ["image_0", "shape_b11"], ["image_0r"]),
        helper.make_node("Add", ["eef_b13", "c_step"], ["pos0"]),
        helper.make_node("Add", ["pos0", "image_0r"], ["position"]),
        helper.make_node("Shape", ["eef_pos"], ["eshape"], start=0, end=1),
        helper.make_node("Concat", ["eshape", "t_dim"], ["shape_bt"], axis=0),
        helper.make_node("Expand", ["c_bins", "shape_bt"], ["gripper_bin"]),
        helper.make_node("Expand", ["c_bins", "shape_bt"], ["rotation_bin"]),
    ]
    inits.append(numpy_helper.from_array(np.array([T], np.int64), "t_dim"))
    graph = helper.make_graph(
        nodes,
        "regression",
        [
            helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", H, W, 3]),
            helper.make_tensor_value_info("eef_pos", TensorProto.FLOAT, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("position", TensorProto.FLOAT, ["batch", T, 3]),
            helper.make_tensor_value_info("gripper_bin", TensorProto.INT64, ["batch", T]),
            helper.make_tensor_value_info("rotation_bin", TensorProto.INT64, ["batch", T]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    full = spec.replace(
        model=dataclasses.replace(
            spec.model,
            inputs=(
                TensorSpec("image", "uint8", ("batch", H, W, 3)),
                TensorSpec("eef_pos", "float32", ("batch", 3)),
            ),
            outputs=(TensorSpec("position", "float32", ("batch", T, 3)),),
        )
    )
    return attach_spec(model, full)


def test_a_declared_extra_input_is_fed_from_the_observation(tmp_path):
    import onnx

    from para_ros.runtime.onnx_policy import ModelLoadError, Observation, OnnxPolicy

    spec = _spec(head="world_regression", extra_inputs=(GraphInputSpec.known("eef_pos"),))
    path = tmp_path / "reg.onnx"
    onnx.save(_regression_graph(spec), str(path))
    policy = OnnxPolicy(str(path), providers=["CPUExecutionProvider"])
    assert policy.spec.model.head == "world_regression" and not policy.has_start_keypoint
    K = np.array([[200.0, 0, 320], [0, 200.0, 240], [0, 0, 1]])
    T_wc = np.eye(4)
    eef = np.array([0.05, -0.02, 0.8])
    obs = Observation(np.zeros((480, 640, 3), np.uint8), K, T_wc, eef)
    res = policy.infer(obs)
    T = spec.window.steps
    want = eef + np.stack([0.01 * (np.arange(T) + 1), np.zeros(T), np.zeros(T)], -1)
    np.testing.assert_allclose(res.chunk.positions, want, atol=1e-6)
    assert res.chunk.valid.all()
    policy.warmup(1)
    # the same graph without the declaration: an undeclared input is refused at load time
    onnx.save(_regression_graph(_spec(head="world_regression")), str(tmp_path / "undecl.onnx"))
    with pytest.raises(ModelLoadError, match=r"graph input `eef_pos` is neither.*extra_inputs"):
        OnnxPolicy(str(tmp_path / "undecl.onnx"), providers=["CPUExecutionProvider"])
    # declared in the contract but absent from the graph: refused, naming the input
    both = tuple(GraphInputSpec.known(n) for n in ("eef_pos", "gripper_state"))
    onnx.save(
        _regression_graph(_spec(head="world_regression", extra_inputs=both)),
        str(tmp_path / "more.onnx"),
    )
    with pytest.raises(ModelLoadError, match=r"no input `gripper_state` \(declared in"):
        OnnxPolicy(str(tmp_path / "more.onnx"), providers=["CPUExecutionProvider"])
    # a voxel_volume contract on a graph without voxel outputs: refused, naming the family
    bad = _spec(head="voxel_volume", extra_inputs=(GraphInputSpec.known("eef_pos"),))
    onnx.save(_regression_graph(bad), str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelLoadError, match=r"lacks output\(s\).*'voxel_volume'"):
        OnnxPolicy(str(tmp_path / "bad.onnx"), providers=["CPUExecutionProvider"])


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped model not present")
def test_the_shipped_model_loads_with_the_default_head():
    from para_ros.core.onnx_metadata import read_spec

    spec = read_spec(SHIPPED)
    assert spec.spec_version == 2
    assert spec.model.head == "voxel_volume" and spec.model.extra_inputs == ()
    raw = json.loads(spec.to_json())
    assert raw["model"]["head"] == "voxel_volume"


@pytest.mark.skipif(
    not (SHIPPED.is_file() and FIELD.is_dir() and REFERENCE.is_file()),
    reason="shipped model, field data or reference not present",
)
def test_the_shipped_model_decodes_as_before():
    """OnnxPolicy.infer on field-data frames equals the outputs recorded for the shipped model
    (tests/data/make_shipped_reference.py; first recorded on commit 045e186 with the code before
    head families existed, re-recorded on e9b66cb when the model was replaced): the decoded
    action (voxels, targets, pixels, rotation, gripper, validity) bit for bit; the
    network's float outputs (confidence, heatmap, start keypoint) to 1e-4 relative, since ORT's
    fp32 kernels differ in the last bits between CPUs (CI's CPU, without AVX-512: 2.7e-6)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_shipped_reference", REPO / "tests" / "data" / "make_shipped_reference.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref = np.load(REFERENCE)
    got = mod.infer_reference()
    assert tuple(ref["frames"]) == mod.FRAMES
    floats = ("confidence", "heatmap", "start_keypoint")
    assert set(got) == set(ref.files) - {"frames"}
    for key, value in got.items():
        if key in floats:
            np.testing.assert_allclose(value, ref[key], rtol=1e-4, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(value, ref[key], err_msg=key)
