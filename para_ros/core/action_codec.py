"""Whole action chunks <-> model targets, shared by training, the runtime and replay evaluation.

`encode_targets` turns a recorded future (T EEF poses and gripper values) into the classes the
model is trained on; `decode_chunk` turns the model's classes back into T world-frame targets.
Both use the PolicySpec and the geometry/codecs of the core, so training and deployment cannot
disagree on a formula.

Shapes: T = spec.window.steps. Voxel indices are (z, y, x) = (height bin, grid row, grid col).
Positions are metres in the world frame; euler angles scipy "xyz" radians; quaternions xyzw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from para_ros.core import geometry
from para_ros.core.codecs import LinearBins, RotationCodec, rotation_codec_from_spec
from para_ros.core.contract import PolicySpec


@dataclass(frozen=True)
class Codecs:
    """The bin codecs of one PolicySpec, built once."""

    height: LinearBins
    gripper: LinearBins
    rotation: RotationCodec

    @classmethod
    def from_spec(cls, spec: PolicySpec) -> Codecs:
        return cls(
            height=LinearBins.from_spec(spec.height),
            gripper=LinearBins.from_spec(spec.gripper),
            rotation=rotation_codec_from_spec(spec.rotation),
        )


@dataclass(frozen=True)
class Targets:
    voxel: np.ndarray  # (T, 3) int64 (z, y, x)
    in_view: np.ndarray  # (T,) bool: the target projects inside the image, in front of camera
    pixels: np.ndarray  # (T, 2) float64 projected (u, v), model-input pixels
    gripper_bins: np.ndarray  # (T,) int64
    rotation_bins: np.ndarray  # (T,) or (T, 3) int64 (euler mode)


def encode_targets(
    spec: PolicySpec,
    codecs: Codecs,
    eef_pos: np.ndarray,  # (T, 3) world, metres
    eef_euler: np.ndarray,  # (T, 3) scipy "xyz", radians
    gripper: np.ndarray,  # (T,)
    K: np.ndarray,  # (3, 3) at model-input resolution
    T_world_cam: np.ndarray,  # (4, 4)
) -> Targets:
    """Training labels of T future EEF states: the grid cell the EEF projects to, its height
    bin, gripper bin and rotation bin(s). `T_world_cam` is camera-to-world (OpenCV optical
    axes); gripper values are in the training data's units (LIBERO: -1 open, +1 closed);
    `in_view` is False where the EEF is behind the camera or off the image."""
    image_hw = (spec.image.height, spec.image.width)
    grid_hw = (spec.grid.height, spec.grid.width)
    uv, depth = geometry.project(eef_pos, K, T_world_cam)  # (T, 2), (T,)
    in_view = (depth > 0) & geometry.in_image(uv, image_hw)
    i, j = geometry.pixel_to_cell(np.nan_to_num(uv), image_hw, grid_hw)
    z = codecs.height.encode(np.asarray(eef_pos)[:, 2])
    return Targets(
        voxel=np.stack([z, i, j], axis=-1),
        in_view=in_view,
        pixels=uv,
        gripper_bins=codecs.gripper.encode(gripper),
        rotation_bins=codecs.rotation.encode(eef_euler),
    )


@dataclass(frozen=True)
class ActionChunk:
    positions: np.ndarray  # (T, 3) world metres; NaN where `valid` is False
    valid: np.ndarray  # (T,) bool: the ray met the height plane in front of the camera
    reasons: np.ndarray  # (T,) str: "" | "parallel" | "behind"
    pixels: np.ndarray  # (T, 2) cell-centre (u, v), model-input pixels
    heights: np.ndarray  # (T,) world Z of the height-bin centre, metres
    euler: np.ndarray  # (T, 3) scipy "xyz", radians
    quat_xyzw: np.ndarray  # (T, 4)
    rotation_bins: np.ndarray  # (T,) or (T, 3)
    gripper: np.ndarray  # (T,) gripper value at the bin centre
    gripper_bins: np.ndarray  # (T,)
    confidence: np.ndarray  # (T,) probability of the argmax voxel
    voxel: np.ndarray  # (T, 3) (z, y, x)


def decode_chunk(
    spec: PolicySpec,
    codecs: Codecs,
    voxel: np.ndarray,  # (T, 3) int (z, y, x)
    confidence: np.ndarray,  # (T,)
    gripper_bins: np.ndarray,  # (T,)
    rotation_bins: np.ndarray,  # (T,) or (T, 3)
    K: np.ndarray,  # (3, 3) at model-input resolution
    T_world_cam: np.ndarray,  # (4, 4)
) -> ActionChunk:
    """The inverse of `encode_targets` for the model's argmax outputs: each voxel's cell
    centre lifted along its camera ray to its height-bin centre (world, metres; NaN and
    `valid` False where the ray misses the plane), gripper and rotation at their bin centres.
    `T_world_cam` is camera-to-world (OpenCV optical axes); quaternions x y z w."""
    voxel = np.asarray(voxel, dtype=np.int64)
    image_hw = (spec.image.height, spec.image.width)
    grid_hw = (spec.grid.height, spec.grid.width)
    pixels = geometry.cell_center(voxel[:, 1], voxel[:, 2], image_hw, grid_hw)  # (T, 2)
    heights = codecs.height.decode(voxel[:, 0])  # (T,)
    lifted = geometry.lift(pixels, heights, K, T_world_cam)
    euler = codecs.rotation.decode(rotation_bins)  # (T, 3)
    return ActionChunk(
        positions=lifted.points,
        valid=lifted.valid,
        reasons=lifted.reason,
        pixels=pixels,
        heights=heights,
        euler=euler,
        quat_xyzw=geometry.euler_to_quat_xyzw(euler),
        rotation_bins=np.asarray(rotation_bins, dtype=np.int64),
        gripper=codecs.gripper.decode(gripper_bins),
        gripper_bins=np.asarray(gripper_bins, dtype=np.int64),
        confidence=np.asarray(confidence, dtype=np.float64),
        voxel=voxel,
    )
