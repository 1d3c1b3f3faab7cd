"""Model inputs from recorded data: frames resized to the model input and the start keypoint
the runtime would feed with them (the same `prepare` and projection as OnnxPolicy.infer), for
int8 calibration and for parity on real frames instead of random inputs.

The frames come from any format `para_ros.data` reads (official LIBERO HDF5, LeRobot v3.0
with a calibration sidecar, rosbag2, this project's HDF5, episode folders).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from para_ros.core import geometry
from para_ros.core.contract import PolicySpec
from para_ros.core.image import prepare

# the repository's field data (written by the tools of each format; see its README)
FIELD_DATA = Path(__file__).resolve().parents[2] / "shared" / "field-data"


@dataclass(frozen=True)
class Frames:
    image: np.ndarray  # (N, H, W, 3) uint8 at the model input size
    start_keypoint: np.ndarray  # (N, 3 | 4) float32
    source: str  # where they came from
    K_model: np.ndarray | None = None  # (N, 3, 3) K at the model input size
    T_world_cam: np.ndarray | None = None  # (N, 4, 4)

    def __len__(self) -> int:
        return len(self.image)

    def feeds(self, k: int, batch: int = 1) -> dict:
        return {
            "image": self.image[k : k + batch],
            "start_keypoint": self.start_keypoint[k : k + batch],
        }

    def subset(self, step: int) -> Frames:
        """Every `step`-th frame (e.g. a calibration set disjoint in time from the rest)."""
        K = None if self.K_model is None else self.K_model[::step]
        T = None if self.T_world_cam is None else self.T_world_cam[::step]
        return Frames(self.image[::step], self.start_keypoint[::step], self.source, K, T)


def default_field_data() -> Path | None:
    """The official-layout LIBERO file of the field data, where present."""
    root = FIELD_DATA / "libero_official_layout" / "libero_spatial"
    files = sorted(root.glob("*.hdf5")) if root.is_dir() else []
    return files[0] if files else None


def frames_from_episodes(episodes, spec: PolicySpec, n: int, source: str = "") -> Frames:
    """Up to `n` frames spread evenly over all episodes' frames."""
    index = [(e, k) for e, ep in enumerate(episodes) for k in range(len(ep.eef_pos))]
    if not index:
        raise ValueError(f"{source}: no frames")
    pick = np.unique(np.linspace(0, len(index) - 1, min(n, len(index))).round().astype(int))
    hw = (spec.image.height, spec.image.width)
    images, starts, Ks, Ts = [], [], [], []
    for i in pick:
        e, k = index[i]
        ep = episodes[e]
        K = np.asarray(ep.K, np.float64)
        K = K[k] if K.ndim == 3 else K
        T = np.asarray(ep.T_world_cam, np.float64)
        T = T[k] if T.ndim == 3 else T
        img, K_model = prepare(np.asarray(ep.rgb[k]), K, hw)
        uv, depth = geometry.project(np.asarray(ep.eef_pos[k], np.float64), K_model, T)
        if not depth > 0:
            continue
        start = [uv[0], uv[1], ep.eef_pos[k][2]]
        if spec.uses_gripper_state:
            # the command being executed at this frame: the previous frame's command
            start.append(float(ep.gripper[max(0, k - 1)]))
        images.append(np.ascontiguousarray(img))
        starts.append(start)
        Ks.append(K_model)
        Ts.append(T)
    return Frames(
        np.stack(images), np.asarray(starts, np.float32), source, np.stack(Ks), np.stack(Ts)
    )


def load_frames(spec: PolicySpec, data: str | Path | None = None, n: int = 64) -> Frames:
    """`n` frames of `data` (default: the field data's LIBERO file) as model inputs."""
    from para_ros.data.readers import load_episodes

    path = Path(data) if data else default_field_data()
    if path is None:
        raise FileNotFoundError(f"no data given and no field data under {FIELD_DATA}")
    return frames_from_episodes(load_episodes(path), spec, n, source=str(path))


def compare_outputs(spec: PolicySpec, frames: Frames, ref: list, got: list) -> dict:
    """Agreement of two models' outputs on `frames` (lists of per-frame output lists in
    export.OUTPUT_NAMES order): voxel / gripper / rotation argmax agreement over all steps,
    relative error of the float outputs, and the 3D distance of the decoded targets (mm)."""
    from para_ros.core.action_codec import Codecs, decode_chunk

    codecs = Codecs.from_spec(spec)
    vox, grip, rot, dist = [], [], [], []
    err: dict[int, float] = {}
    for k, (r, g) in enumerate(zip(ref, got, strict=True)):
        vox.append((r[0] == g[0]).all(-1).ravel())
        grip.append((r[2] == g[2]).ravel())
        rot.append((r[3] == g[3]).reshape(r[3].shape[0], r[3].shape[1], -1).all(-1).ravel())
        for i, (a, b) in enumerate(zip(r, g, strict=True)):
            if a.dtype.kind == "f":
                e = float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))
                err[i] = max(err.get(i, 0.0), e)
        if frames.K_model is not None:
            ca, cb = (
                decode_chunk(
                    spec,
                    codecs,
                    o[0][0],
                    o[1][0],
                    o[2][0],
                    o[3][0],
                    frames.K_model[k],
                    frames.T_world_cam[k],
                )
                for o in (r, g)
            )
            ok = ca.valid & cb.valid
            dist.extend(np.linalg.norm(ca.positions[ok] - cb.positions[ok], axis=-1) * 1e3)
    rep = {
        "frames": len(ref),
        "voxel_agreement": float(np.concatenate(vox).mean()),
        "gripper_agreement": float(np.concatenate(grip).mean()),
        "rotation_agreement": float(np.concatenate(rot).mean()),
    }
    from para_training.export import OUTPUT_NAMES

    for i, e in sorted(err.items()):
        rep[f"{OUTPUT_NAMES[i]}_rel_err"] = e
    if dist:
        d = np.asarray(dist)
        rep["target_dist_mm_mean"] = float(d.mean())
        rep["target_dist_mm_p99"] = float(np.percentile(d, 99))
        rep["target_dist_mm_max"] = float(d.max())
    return rep
