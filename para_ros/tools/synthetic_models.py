"""PARA-contract ONNX graphs with known outputs, built with onnx.helper (no torch).

`constant_policy_model` answers every frame with the same voxel, gripper and rotation classes,
so a test can compute the exact world targets the node must publish. `heavy_layers` adds an
image-dependent MatMul chain whose result is multiplied by 0 and added to `voxel_prob`: the
answer is unchanged but inference takes a chosen amount of time (overload tests, benchmarks).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from para_ros.core.contract import PolicySpec, TensorSpec
from para_ros.core.onnx_metadata import attach_spec


def constant_policy_model(
    spec: PolicySpec,
    voxel: np.ndarray,  # (T, 3) int (z, y, x)
    prob: np.ndarray,  # (T,)
    gripper_bins: np.ndarray,  # (T,)
    rotation_bins: np.ndarray,  # (T,)
    heavy_layers: int = 0,
    heavy_width: int = 1024,
    heavy_row: int = 12,
    model_id: str = "constant",
) -> onnx.ModelProto:
    T = spec.window.steps
    H, W = spec.image.height, spec.image.width
    Hg, Wg = spec.grid.height, spec.grid.width
    i64 = TensorProto.INT64
    f32 = TensorProto.FLOAT
    inits = [
        numpy_helper.from_array(np.asarray(voxel, np.int64).reshape(1, T, 3), "c_voxel"),
        numpy_helper.from_array(np.asarray(prob, np.float32).reshape(1, T), "c_prob"),
        numpy_helper.from_array(np.asarray(gripper_bins, np.int64).reshape(1, T), "c_grip"),
        numpy_helper.from_array(np.asarray(rotation_bins, np.int64).reshape(1, T), "c_rot"),
        numpy_helper.from_array(np.array([0], np.int64), "zero_i"),
        numpy_helper.from_array(np.array([1], np.int64), "one_i"),
        numpy_helper.from_array(np.array([T], np.int64), "dim_T"),
        numpy_helper.from_array(np.array([3], np.int64), "dim_3"),
        numpy_helper.from_array(np.array([Hg, Wg], np.int64), "dim_grid"),
    ]
    heat = np.zeros((1, T, Hg, Wg), np.float32)
    v = np.asarray(voxel, np.int64)
    heat[0, np.arange(T), v[:, 1], v[:, 2]] = np.asarray(prob, np.float32)
    inits.append(numpy_helper.from_array(heat, "c_heat"))
    nodes = [
        helper.make_node("Shape", ["image"], ["img_shape"]),
        helper.make_node("Slice", ["img_shape", "zero_i", "one_i"], ["batch"]),
        helper.make_node("Concat", ["batch", "dim_T", "dim_3"], ["shape_bt3"], axis=0),
        helper.make_node("Concat", ["batch", "dim_T"], ["shape_bt"], axis=0),
        helper.make_node("Concat", ["batch", "dim_T", "dim_grid"], ["shape_btg"], axis=0),
        helper.make_node("Expand", ["c_voxel", "shape_bt3"], ["voxel"]),
        helper.make_node("Expand", ["c_grip", "shape_bt"], ["gripper_bin"]),
        helper.make_node("Expand", ["c_rot", "shape_bt"], ["rotation_bin"]),
        helper.make_node("Expand", ["c_heat", "shape_btg"], ["heatmap"]),
        helper.make_node("Mul", ["start_keypoint", "zero_f"], ["start_zero"]),
        helper.make_node("ReduceSum", ["start_zero"], ["start_sum"], keepdims=0),
    ]
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"))
    prob_src = "prob_expanded"
    nodes.append(helper.make_node("Expand", ["c_prob", "shape_bt"], [prob_src]))
    # keep start_keypoint a live input (ORT drops unused inputs from the signature otherwise)
    nodes.append(helper.make_node("Add", [prob_src, "start_sum"], ["prob_live"]))
    prob_src = "prob_live"
    if heavy_layers > 0:
        rng = np.random.default_rng(0)
        # the image as (B, H*W*3 / heavy_row, heavy_row): cost ~ H*W*3/heavy_row * width^2
        inits.append(numpy_helper.from_array(np.array([0, -1, heavy_row], np.int64), "shape_rows"))
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal((heavy_row, heavy_width)) * 1e-3).astype(np.float32), "w_in"
            )
        )
        nodes += [
            helper.make_node("Cast", ["image"], ["img_f"], to=f32),
            helper.make_node("Reshape", ["img_f", "shape_rows"], ["rows"]),
            helper.make_node("MatMul", ["rows", "w_in"], ["h0"]),
        ]
        for k in range(heavy_layers):
            name = f"w_{k}"
            inits.append(
                numpy_helper.from_array(
                    (rng.standard_normal((heavy_width, heavy_width)) * 1e-3).astype(np.float32),
                    name,
                )
            )
            nodes.append(helper.make_node("MatMul", [f"h{k}", name], [f"h{k + 1}"]))
        nodes += [
            helper.make_node("ReduceMean", [f"h{heavy_layers}"], ["heavy"], keepdims=0),
            helper.make_node("Mul", ["heavy", "zero_f"], ["heavy_zero"]),
            helper.make_node("Add", [prob_src, "heavy_zero"], ["prob_heavy"]),
        ]
        prob_src = "prob_heavy"
    nodes.append(helper.make_node("Identity", [prob_src], ["voxel_prob"]))
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", H, W, 3]),
        helper.make_tensor_value_info("start_keypoint", f32, ["batch", 3]),
    ]
    outputs = [
        helper.make_tensor_value_info("voxel", i64, ["batch", T, 3]),
        helper.make_tensor_value_info("voxel_prob", f32, ["batch", T]),
        helper.make_tensor_value_info("gripper_bin", i64, ["batch", T]),
        helper.make_tensor_value_info("rotation_bin", i64, ["batch", T]),
        helper.make_tensor_value_info("heatmap", f32, ["batch", T, Hg, Wg]),
    ]
    graph = helper.make_graph(nodes, "para_constant", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    spec = spec.replace(
        model=dataclasses.replace(
            spec.model,
            architecture="constant",
            model_id=model_id,
            inputs=(
                TensorSpec("image", "uint8", ("batch", H, W, 3)),
                TensorSpec("start_keypoint", "float32", ("batch", 3)),
            ),
            outputs=tuple(
                TensorSpec(
                    o.name,
                    "int64" if o.type.tensor_type.elem_type == i64 else "float32",
                    tuple(d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim),
                )
                for o in outputs
            ),
        )
    )
    return attach_spec(model, spec)
