"""The PolicySpec travels inside the ONNX file and is read back by path and by ORT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from para_ros.core.contract import PolicySpec, SpecError, WindowSpec
from para_ros.core.onnx_metadata import METADATA_KEY, read_spec, spec_from_metadata, write_spec


def _identity_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))


def test_write_then_read(tmp_path):
    path = tmp_path / "m.onnx"
    _identity_model(path)
    spec = PolicySpec(window=WindowSpec(steps=4, stride=2, dt=0.1))
    write_spec(path, spec)
    assert read_spec(path) == spec
    import onnxruntime as ort  # the README's setup installs the cpu extra

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert spec_from_metadata(meta) == spec
    out = sess.run(None, {"x": np.ones((2, 3), np.float32)})[0]
    assert out.shape == (2, 3)  # the metadata does not disturb the graph


def test_missing_metadata_is_named(tmp_path):
    path = tmp_path / "m.onnx"
    _identity_model(path)
    with pytest.raises(SpecError, match=f"no `{METADATA_KEY}` in the ONNX metadata"):
        read_spec(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(SpecError, match="not a readable ONNX file"):
        read_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        read_spec(tmp_path / "nope.onnx")
