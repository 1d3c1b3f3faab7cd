"""Record `OnnxPolicy.infer` of the shipped model on field-data frames (the reference that
tests/test_heads.py compares against bit for bit).

    python tests/data/make_shipped_reference.py OUT.npz   # run from the checkout to record
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "para_libero_spatial_t0" / "model.onnx"
FIELD = REPO.parent / "shared" / "field-data" / "libero_official_layout"
FRAMES = (0, 7, 15, 23, 31, 40)


def infer_reference() -> dict[str, np.ndarray]:
    from para_ros.data.readers import load_episodes
    from para_ros.data.source import DataSource
    from para_ros.runtime.onnx_policy import Observation, OnnxPolicy

    ep = load_episodes(FIELD, DataSource())[0]
    policy = OnnxPolicy(str(MODEL), providers=["CPUExecutionProvider"])
    keys = ("positions", "valid", "pixels", "heights", "euler", "gripper", "confidence", "voxel")
    out: dict[str, list] = {k: [] for k in (*keys, "heatmap", "start_keypoint")}
    for f in FRAMES:
        obs = Observation(
            image=np.asarray(ep.rgb[f]),
            K=ep.K_at(f),
            T_world_cam=ep.T_world_cam_at(f),
            eef_pos=ep.eef_pos[f],
            gripper=float(ep.gripper[f - 1]) if f > 0 else None,
        )
        res = policy.infer(obs, with_heatmap=True)
        for k in keys:
            out[k].append(getattr(res.chunk, k))
        out["heatmap"].append(res.heatmap)
        out["start_keypoint"].append(res.start_keypoint)
    return {k: np.stack(v) for k, v in out.items()}


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], frames=np.array(FRAMES), **infer_reference())
    print(f"wrote {sys.argv[1]}")
