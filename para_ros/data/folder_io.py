"""Plain episode folders: PNG frames plus numpy arrays, readable without any robotics stack.

    <episode>/meta.json      {"name", "language", "fps"}
    <episode>/states.npz     eef_pos (N, 3) m world; eef_quat (N, 4) xyzw; gripper (N,);
                             joints (N, J) rad; time (N,) s; K (3, 3) or (N, 3, 3);
                             T_world_cam (4, 4) or (N, 4, 4) camera -> world, OpenCV axes
    <episode>/rgb/000000.png ... one upright RGB frame per state row

A dataset is a folder of such folders. Arrays are loaded with allow_pickle=False.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from para_ros.data.episode import Episode, EpisodeError

STATE_KEYS = ("eef_pos", "eef_quat", "gripper", "joints", "time", "K", "T_world_cam")


def write_folder(root: str | Path, ep: Episode) -> Path:
    root = Path(root)
    d = root / (ep.name or "episode")
    (d / "rgb").mkdir(parents=True, exist_ok=True)
    for i in range(len(ep)):
        Image.fromarray(np.asarray(ep.rgb[i])).save(d / "rgb" / f"{i:06d}.png")
    np.savez(d / "states.npz", **{k: np.asarray(getattr(ep, k)) for k in STATE_KEYS})
    (d / "meta.json").write_text(
        json.dumps({"name": ep.name, "language": ep.language, "fps": ep.fps})
    )
    return d


def is_episode_folder(path: Path) -> bool:
    return (path / "states.npz").is_file() and (path / "rgb").is_dir()


def read_folder(path: str | Path) -> Episode:
    d = Path(path)
    if not is_episode_folder(d):
        raise EpisodeError(f"{d}: not an episode folder (needs states.npz and rgb/)")
    with np.load(d / "states.npz", allow_pickle=False) as z:
        missing = [k for k in STATE_KEYS if k not in z]
        if missing:
            raise EpisodeError(f"{d}/states.npz: missing arrays {missing}")
        states = {k: np.asarray(z[k], dtype=np.float64) for k in STATE_KEYS}
    frames = sorted((d / "rgb").glob("*.png"))
    if len(frames) != len(states["eef_pos"]):
        raise EpisodeError(
            f"{d}: {len(frames)} PNG frames for {len(states['eef_pos'])} state rows"
        )
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in frames])
    meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").is_file() else {}
    return Episode(
        rgb=rgb, name=meta.get("name", d.name), language=meta.get("language", ""), **states
    )


def read_folders(root: str | Path) -> list[Episode]:
    root = Path(root)
    if is_episode_folder(root):
        return [read_folder(root)]
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and is_episode_folder(p))
    if not dirs:
        raise EpisodeError(f"{root}: no episode folders (each needs states.npz and rgb/)")
    return [read_folder(p) for p in dirs]
