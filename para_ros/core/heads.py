"""Head families: graph outputs -> ActionChunk, one decoder per family (pure numpy).

The contract names a model's head family (`spec.model.head`); the runtime (`OnnxPolicy`),
training validation and replay decode through this table, so a new architecture with a known
head family runs in the node, the in-process evaluation, replay and the bridge unchanged. The
node never needs a training model's name.

    voxel_volume      voxel (T, 3) int (z, y, x), voxel_prob (T,), gripper_bin (T,),
                      rotation_bin (T,) | (T, 3)
                      -> cell centre + height-bin centre, lifted on the camera ray
                         (action_codec.decode_chunk, DESIGN §4)
    world_regression  position (T, 3) float world metres, gripper_bin (T,),
                      rotation_bin (T,) | (T, 3)
                      -> the positions as they are; pixels are their projections (for
                         display and the pixel metric), heights their z, confidence 1.0 (a
                         regression has no distribution over positions: the confidence gate
                         passes it), voxel the class the position encodes to

Shapes are per sample (the runtime slices the batch dimension off before decoding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from para_ros.core import geometry
from para_ros.core.action_codec import ActionChunk, Codecs, decode_chunk
from para_ros.core.contract import HEAD_FAMILIES, PolicySpec, SpecError

Decoder = Callable[[PolicySpec, Codecs, Mapping[str, np.ndarray], np.ndarray, np.ndarray], object]


@dataclass(frozen=True)
class HeadFamily:
    name: str
    outputs: tuple[str, ...]  # graph outputs the decoder reads (fetched every frame)
    decode: Decoder  # (spec, codecs, outputs by name, K_model, T_world_cam) -> ActionChunk


def _decode_voxel_volume(spec, codecs, out, K, T_world_cam) -> ActionChunk:
    return decode_chunk(
        spec,
        codecs,
        out["voxel"],
        out["voxel_prob"],
        out["gripper_bin"],
        out["rotation_bin"],
        K,
        T_world_cam,
    )


def _decode_world_regression(spec, codecs, out, K, T_world_cam) -> ActionChunk:
    pos = np.asarray(out["position"], dtype=np.float64)  # (T, 3) world metres
    n = pos.shape[0]
    image_hw = (spec.image.height, spec.image.width)
    grid_hw = (spec.grid.height, spec.grid.width)
    uv, depth = geometry.project(pos, K, T_world_cam)  # (T, 2), (T,)
    i, j = geometry.pixel_to_cell(np.nan_to_num(uv), image_hw, grid_hw)  # (T,), (T,)
    z = codecs.height.encode(np.nan_to_num(pos[:, 2]))  # (T,)
    finite = np.isfinite(pos).all(-1)  # (T,)
    euler = codecs.rotation.decode(out["rotation_bin"])  # (T, 3)
    gbin = np.asarray(out["gripper_bin"], dtype=np.int64)  # (T,)
    return ActionChunk(
        positions=np.where(finite[:, None], pos, np.nan),
        valid=finite,
        reasons=np.where(finite, "", "nonfinite"),
        pixels=np.where((depth > 0)[:, None], uv, np.nan),
        heights=pos[:, 2].copy(),
        euler=euler,
        quat_xyzw=geometry.euler_to_quat_xyzw(euler),
        rotation_bins=np.asarray(out["rotation_bin"], dtype=np.int64),
        gripper=codecs.gripper.decode(gbin),
        gripper_bins=gbin,
        confidence=np.ones(n),
        voxel=np.stack([z, i, j], axis=-1).astype(np.int64),
    )


HEADS: dict[str, HeadFamily] = {
    "voxel_volume": HeadFamily(
        "voxel_volume",
        ("voxel", "voxel_prob", "gripper_bin", "rotation_bin"),
        _decode_voxel_volume,
    ),
    "world_regression": HeadFamily(
        "world_regression",
        ("position", "gripper_bin", "rotation_bin"),
        _decode_world_regression,
    ),
}
assert tuple(HEADS) == HEAD_FAMILIES, "contract.HEAD_FAMILIES and heads.HEADS must agree"


def head_for(spec: PolicySpec) -> HeadFamily:
    """The decoder of the spec's head family (SpecError naming `model.head` when unknown)."""
    name = spec.model.head
    if name not in HEADS:
        raise SpecError(
            f"PolicySpec: `model.head`: unknown head family {name!r}; this build decodes "
            f"{sorted(HEADS)}"
        )
    return HEADS[name]


def decode_outputs(
    spec: PolicySpec,
    codecs: Codecs,
    outputs: Mapping[str, np.ndarray],
    K: np.ndarray,
    T_world_cam: np.ndarray,
) -> ActionChunk:
    """One sample's graph outputs (by name, batch dimension removed) -> ActionChunk."""
    head = head_for(spec)
    missing = [n for n in head.outputs if n not in outputs]
    if missing:
        raise KeyError(f"head family {head.name!r} needs output(s) {missing}")
    return head.decode(spec, codecs, outputs, K, T_world_cam)
