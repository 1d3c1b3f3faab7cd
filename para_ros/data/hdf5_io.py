"""LIBERO/robomimic-style HDF5 demonstrations, with the camera stored beside each demo.

Layout (one file, many demos), as written by `para-make-demos` and `write_hdf5`:

    /data                         attrs: env_args (JSON str), language, total (frames)
    /data/demo_<k>                attrs: num_samples, init_state (int), fps
        obs/agentview_rgb         (N, H, W, 3) uint8, upright RGB (robosuite renders upside
                                  down; writers flip before storing)
        obs/agentview_depth       (N, H, W) uint16, optional: depth registered to
                                  agentview_rgb, along the optical axis, millimetres, 0 = no
                                  reading (REP 118's 16UC1); written by para-make-demos
        obs/robot0_eef_pos        (N, 3) float64, world, metres
        obs/robot0_eef_quat       (N, 4) float64, (x, y, z, w) as robosuite reports it
        obs/robot0_joint_pos      (N, J) float64, radians
        obs/robot0_gripper_qpos   (N, 2) float64, finger joint positions, metres
        actions                   (N, 7) float64, [dx dy dz drx dry drz grip], grip -1 open,
                                  +1 closed (LIBERO); the gripper target is actions[:, -1]
        camera/K                  (3, 3) float64, intrinsics of agentview_rgb
        camera/T_world_cam        (4, 4) or (N, 4, 4) float64, camera -> world, OpenCV axes
        timestamps                (N,) float64, seconds

Official LIBERO files (upside-down `agentview_rgb`, no camera group) are read by `libero_io`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from para_ros.data.episode import Episode, EpisodeError

IMAGE_KEYS = ("agentview_rgb", "agentview_image")


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EpisodeError("reading HDF5 demos needs h5py: pip install 'para_ros[data]'") from exc
    return h5py


def write_hdf5(path: str | Path, episodes: list[Episode], env_args: dict | None = None) -> None:
    """Write episodes to `path` atomically (a temp file renamed when complete)."""
    h5py = _h5py()
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".partial")
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args or {})
        data.attrs["language"] = episodes[0].language if episodes else ""
        data.attrs["total"] = int(sum(len(e) for e in episodes))
        for k, ep in enumerate(episodes):
            g = data.create_group(f"demo_{k}")
            g.attrs["num_samples"] = len(ep)
            g.attrs["name"] = ep.name
            g.attrs["language"] = ep.language
            g.attrs["fps"] = ep.fps
            g.attrs["meta"] = json.dumps(ep.meta)
            obs = g.create_group("obs")
            obs.create_dataset(
                "agentview_rgb",
                data=np.asarray(ep.rgb),
                compression="lzf",
                chunks=(1, *ep.image_hw, 3),
            )
            if ep.depth is not None:
                depth = obs.create_dataset(
                    "agentview_depth",
                    data=np.asarray(ep.depth),
                    compression="lzf",
                    chunks=(1, *ep.image_hw),
                )
                depth.attrs["units"] = "mm"
            obs.create_dataset("robot0_eef_pos", data=ep.eef_pos)
            obs.create_dataset("robot0_eef_quat", data=ep.eef_quat)
            obs.create_dataset("robot0_joint_pos", data=ep.joints)
            fingers = ep.meta.get("gripper_qpos")
            if fingers is not None:
                obs.create_dataset("robot0_gripper_qpos", data=np.asarray(fingers))
            actions = ep.meta.get("actions")
            if actions is None:
                actions = np.zeros((len(ep), 7))
                actions[:, -1] = ep.gripper
            g.create_dataset("actions", data=np.asarray(actions))
            cam = g.create_group("camera")
            cam.create_dataset("K", data=np.asarray(ep.K))
            cam.create_dataset("T_world_cam", data=np.asarray(ep.T_world_cam))
            g.create_dataset("timestamps", data=ep.time)
    tmp.replace(path)


def _depth(obs, where: str, load: bool):
    """obs/agentview_depth (uint16 millimetres) or None; refused in other units."""
    if "agentview_depth" not in obs:
        return None
    d = obs["agentview_depth"]
    units = d.attrs.get("units", "mm")
    if d.dtype != np.uint16 or units != "mm":
        raise EpisodeError(
            f"{where}: obs/agentview_depth is {d.dtype} in {units!r}; expected uint16 "
            "millimetres (REP 118's 16UC1)"
        )
    return np.asarray(d) if load else d


def read_hdf5(path: str | Path, load_images: bool = True) -> list[Episode]:
    """Read every demo of an HDF5 file (images loaded into memory unless load_images=False,
    in which case `rgb` stays an h5py dataset and the file stays open)."""
    h5py = _h5py()
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EpisodeError(f"{path}: not a readable HDF5 file ({exc})") from exc
    try:
        if "data" not in f:
            raise EpisodeError(f"{path}: no /data group (expected robomimic-style demos)")
        demos = sorted(f["data"], key=lambda k: int(k.split("_")[-1]) if k[-1].isdigit() else k)
        language = f["data"].attrs.get("language", "")
        out = []
        for key in demos:
            g = f["data"][key]
            where = f"{path}:/data/{key}"
            if "camera" not in g:
                raise EpisodeError(
                    f"{where}: no camera/K and camera/T_world_cam; PARA needs the camera of "
                    "each demo: official LIBERO files (a model_file per demo) are read with "
                    "--format libero, other files with --calibration FILE.json"
                )
            image_key = next((k for k in IMAGE_KEYS if k in g["obs"]), None)
            if image_key is None:
                raise EpisodeError(f"{where}: no obs/{' or obs/'.join(IMAGE_KEYS)}")
            rgb = g["obs"][image_key]
            for k in ("robot0_eef_pos", "robot0_eef_quat"):
                if k not in g["obs"]:
                    raise EpisodeError(
                        f"{where}: no obs/{k} (this project's layout; official LIBERO files "
                        "are read with --format libero)"
                    )
            if "actions" not in g:
                raise EpisodeError(f"{where}: no actions (the gripper is actions[:, -1])")
            actions = np.asarray(g["actions"], dtype=np.float64)
            n = len(actions)
            if "timestamps" in g:
                t = np.asarray(g["timestamps"], dtype=np.float64)
            else:
                t = np.arange(n) / float(g.attrs.get("fps", 20.0))
            meta = json.loads(g.attrs.get("meta", "{}"))
            out.append(
                Episode(
                    rgb=np.asarray(rgb) if load_images else rgb,
                    K=np.asarray(g["camera"]["K"], dtype=np.float64),
                    T_world_cam=np.asarray(g["camera"]["T_world_cam"], dtype=np.float64),
                    eef_pos=np.asarray(g["obs"]["robot0_eef_pos"], dtype=np.float64),
                    eef_quat=np.asarray(g["obs"]["robot0_eef_quat"], dtype=np.float64),
                    gripper=actions[:, -1].copy(),
                    joints=np.asarray(g["obs"].get("robot0_joint_pos", np.zeros((n, 0)))),
                    time=t,
                    name=str(g.attrs.get("name", key)),
                    language=str(g.attrs.get("language", language)),
                    meta=meta,
                    depth=_depth(g["obs"], where, load_images),
                )
            )
        return out
    finally:
        if load_images:
            f.close()
