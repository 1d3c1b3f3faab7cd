"""Training samples: one image, the current EEF keypoint, and T future targets as classes.

For frame f of an episode the targets are the frames f + stride * (t + 1), t = 0..T-1
(clamped to the last frame: the robot holds its final pose), encoded with the PolicySpec by
`para_ros.core.action_codec.encode_targets` (the same code replay evaluation uses).

Item (all numpy -> torch by the default collate):
    image          (H, W, 3) uint8     model-input RGB
    start          (3,) float32        (u px, v px, h m) of the current EEF; (4,) with the
                                       gripper command being executed (spec.uses_gripper_state)
    eef_pos        (3,) float32        the current EEF, world metres
    gripper_state  (1,) float32        the gripper command being executed (open value at f=0)
    voxel_index    (T,) int64          flattened z * Hg * Wg + y * Wg + x, or -100 when the
                                       target leaves the image (ignored by the volume CE)
    voxel          (T, 3) int64        (z, y, x)
    gripper_bin    (T,) int64
    rotation_bin   (T,) int64 | (T, 3) (euler mode)
    target_pos     (T, 3) float64      world metres (for 3D error)
    target_euler   (T, 3) float64      radians (for rotation error)
    target_pixel   (T, 2) float64      projected (u, v)
    K              (3, 3) float64      at model-input resolution
    T_world_cam    (4, 4) float64
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from para_ros.core import geometry
from para_ros.core.action_codec import Codecs, encode_targets
from para_ros.core.contract import PolicySpec
from para_ros.core.image import prepare
from para_ros.data.episode import Episode
from para_training.data.augment import (
    AugmentConfig,
    augment_view,
    mirror,
    reflect_euler,
    reflect_points,
)

IGNORE_INDEX = -100


def sample_index(episodes: list[Episode], episode_ids: list[int]) -> list[tuple[int, int]]:
    """(episode, frame) pairs of every frame that has a future (all but the last)."""
    return [(e, f) for e in episode_ids for f in range(max(len(episodes[e]) - 1, 1))]


class ParaWindowDataset(Dataset):
    def __init__(
        self,
        episodes: list[Episode],
        spec: PolicySpec,
        index: list[tuple[int, int]],
        augment: AugmentConfig | None = None,
    ):
        """augment: training-time camera rotation and colour jitter (para_training.data.augment);
        its random draws come from torch's RNG, so a seeded run is reproducible."""
        self.episodes = episodes
        self.augment = augment if augment is not None and augment.active else None
        if self.augment is not None and self.augment.needs_depth:
            used = sorted({e for e, _ in index})
            missing = [episodes[e].name for e in used if episodes[e].depth is None]
            if missing:
                raise ValueError(
                    f"augment orbit_warp='depth' needs a depth image per frame, but "
                    f"{len(missing)} training episodes have none (first: {missing[0]!r}); "
                    "demos from para-make-demos record it (obs/agentview_depth), or use "
                    "--augment_orbit_warp plane"
                )
        self.spec = spec
        self.codecs = Codecs.from_spec(spec)
        self.index = index
        self._euler = {e: episodes[e].eef_euler() for e in {e for e, _ in index}}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        spec = self.spec
        e, f = self.index[k]
        ep = self.episodes[e]
        hw = (spec.image.height, spec.image.width)
        T, stride = spec.window.steps, spec.window.stride
        image, K = prepare(np.asarray(ep.rgb[f]), ep.K_at(f), hw)  # (H, W, 3), (3, 3)
        T_wc = ep.T_world_cam_at(f)
        if self.augment is not None:  # labels below are projected with the rotated camera
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            depth = None
            if self.augment.needs_depth:
                depth = np.asarray(ep.depth[f])  # (h, w) uint16 mm at the episode's size
                if depth.shape != hw:  # registered to rgb: resized like it, nearest
                    import cv2

                    depth = cv2.resize(depth, hw[::-1], interpolation=cv2.INTER_NEAREST)
            image, T_wc = augment_view(
                image, K, T_wc, ep.eef_pos[f][None], self.augment, rng, depth_mm=depth
            )
        future = np.minimum(f + stride * (np.arange(T) + 1), len(ep) - 1)  # (T,)
        eef, pos, euler = ep.eef_pos[f], ep.eef_pos[future], self._euler[e][future]  # (3,) ...
        if self.augment is not None and self.augment.mirrors:
            if rng.uniform() < self.augment.mirror_prob:  # the reflected scene (augment.mirror)
                image, K, M = mirror(image, K, T_wc)
                eef, pos = reflect_points(M, eef), reflect_points(M, pos)  # (3,), (T, 3)
                euler = reflect_euler(M, euler)  # (T, 3)
        tg = encode_targets(spec, self.codecs, pos, euler, ep.gripper[future], K, T_wc)
        Hg, Wg = spec.grid.height, spec.grid.width
        flat = tg.voxel[:, 0] * Hg * Wg + tg.voxel[:, 1] * Wg + tg.voxel[:, 2]  # (T,)
        flat = np.where(tg.in_view, flat, IGNORE_INDEX)
        uv0, _ = geometry.project(eef, K, T_wc)  # (2,)
        start = [uv0[0], uv0[1], eef[2]]
        # the command being executed: the one sent after f - 1
        grip_state = ep.gripper[f - 1] if f > 0 else spec.gripper.open_value
        if spec.uses_gripper_state:
            start.append(grip_state)
        start = np.array(start, dtype=np.float32)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "start": torch.from_numpy(np.nan_to_num(start)),
            "eef_pos": torch.from_numpy(eef.astype(np.float32)),
            "gripper_state": torch.tensor([grip_state], dtype=torch.float32),
            "voxel_index": torch.from_numpy(flat.astype(np.int64)),
            "voxel": torch.from_numpy(tg.voxel),
            "gripper_bin": torch.from_numpy(tg.gripper_bins),
            "rotation_bin": torch.from_numpy(tg.rotation_bins),
            "target_pos": torch.from_numpy(pos),
            "target_euler": torch.from_numpy(euler),
            "target_pixel": torch.from_numpy(tg.pixels),
            "K": torch.from_numpy(K),
            "T_world_cam": torch.from_numpy(T_wc),
        }
