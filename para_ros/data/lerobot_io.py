"""LeRobot datasets, codebase v3.0, from a local folder (no `lerobot` package needed).

Read:
    meta/info.json                  codebase_version "v3.0", fps, features, data_path and
                                    video_path templates
    meta/episodes/*/*.parquet       per episode: episode_index, length, dataset_from/to_index,
                                    data/chunk_index + data/file_index, and per video feature
                                    videos/<key>/chunk_index, file_index, from_timestamp
    meta/tasks.parquet              task text (the language instruction)
    data/chunk-*/file-*.parquet     frames (pyarrow): the mapped features, `timestamp`
    videos/<key>/chunk-*/file-*.mp4 AV1 or H.264 (PyAV, its own FFmpeg); frame k of an episode
                                    is the video frame at from_timestamp + timestamp[k] (the
                                    nearest decoded frame, within half a frame period)

Feature mapping (DataSource options; defaults fit LeRobot's LIBERO datasets): images from
`image_key` (default observation.images.image, stored upright: used as is); the EEF position
from `state_key[eef_pos_index]` (metres, world frame) and its rotation from
`state_key[eef_rot_index]` in the representation `eef_rot` (axis_angle radians, quat_xyzw,
quat_wxyz or euler_xyz radians); joints from `joints_key`; the gripper command from
`gripper_key[gripper_index]` (LIBERO: action[-1], -1 open, +1 closed).

LeRobot has no camera calibration field: K and T_world_cam come from the sidecar JSON given
with --calibration (format in `para_ros.data.calibration`); a dataset without it is refused.
Conventions of the returned Episode: upright RGB, quaternions (x, y, z, w), metres, radians,
time = the recorded `timestamp` (seconds from the episode start).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.data.episode import Episode, EpisodeError

DEFAULT_IMAGE_KEY = "observation.images.image"


def is_lerobot_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "meta" / "info.json").is_file()


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EpisodeError(
            f"reading LeRobot datasets needs {module}: pip install 'para_ros[data]'"
        ) from exc


def _rotation(values: np.ndarray, rep: str, where: str) -> np.ndarray:
    n = values.shape[1]
    want = {"axis_angle": 3, "euler_xyz": 3, "quat_xyzw": 4, "quat_wxyz": 4}[rep]
    if n != want:
        raise EpisodeError(f"{where}: --eef-rot {rep} needs {want} values, the slice has {n}")
    if rep == "axis_angle":
        return Rotation.from_rotvec(values).as_quat()
    if rep == "euler_xyz":
        return Rotation.from_euler("xyz", values).as_quat()
    q = values if rep == "quat_xyzw" else values[:, [1, 2, 3, 0]]
    norms = np.linalg.norm(q, axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-2):
        raise EpisodeError(
            f"{where}: quaternions are not unit length (|q| in "
            f"[{norms.min():.3f}, {norms.max():.3f}]); check --eef-rot"
        )
    return q / norms[:, None]


def _decode_video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times (F,) s, frames (F, H, W, 3) uint8 RGB) of a whole video file."""
    av = _need("av")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            times, frames = [], []
            for fr in container.decode(stream):
                times.append(float(fr.pts * stream.time_base) if fr.pts is not None else np.nan)
                frames.append(fr.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, IndexError) as exc:
        raise EpisodeError(f"{path}: cannot decode the video ({exc})") from exc
    if not frames:
        raise EpisodeError(f"{path}: the video has no frames")
    return np.asarray(times), np.stack(frames)


def read_lerobot(root: str | Path, source=None) -> list[Episode]:
    """Every episode of a LeRobot v3.0 dataset folder (see the module docstring)."""
    from para_ros.data.calibration import load_calibration
    from para_ros.data.source import DataSource, parse_slice

    source = source or DataSource()
    pq = _need("pyarrow.parquet")
    root = Path(root)
    info_path = root / "meta" / "info.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EpisodeError(f"{info_path}: not readable JSON ({exc})") from exc
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise EpisodeError(
            f"{info_path}: codebase_version {version!r}; this reader takes LeRobot v3.0 "
            "(convert older datasets with lerobot's own conversion script)"
        )
    features = info.get("features", {})
    fps = float(info.get("fps", 0) or 0)
    image_key = source.image_key or DEFAULT_IMAGE_KEY
    videos = sorted(k for k, v in features.items() if v.get("dtype") == "video")
    if image_key not in features or features[image_key].get("dtype") != "video":
        raise EpisodeError(
            f"{info_path}: no video feature {image_key!r}; video features: {videos} "
            "(choose with --image-key)"
        )
    for key in (source.state_key, source.gripper_key, source.joints_key):
        if key and key not in features:
            raise EpisodeError(
                f"{info_path}: no feature {key!r}; features: {sorted(features)} "
                "(map them with --state-key, --gripper-key, --joints-key)"
            )
    if not source.calibration:
        raise EpisodeError(
            f"{root}: LeRobot datasets store no camera calibration; give K and T_world_cam of "
            f"{image_key!r} with --calibration FILE.json (format: {{'K': 3x3, 'T_world_cam': "
            "4x4 camera -> world, OpenCV axes}, see para_ros/data/calibration.py)"
        )
    shape = features[image_key].get("shape", [0, 0, 3])
    names = features[image_key].get("names") or ["height", "width", "channel"]
    hw = (
        (int(shape[names.index("height")]), int(shape[names.index("width")]))
        if "height" in names
        else (int(shape[0]), int(shape[1]))
    )
    K, T = load_calibration(source.calibration, hw)
    pos_slice = parse_slice(source.eef_pos_index, "--eef-pos-index")
    rot_slice = parse_slice(source.eef_rot_index, "--eef-rot-index")
    grip_slice = parse_slice(str(source.gripper_index), "--gripper-index")

    ep_files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not ep_files:
        raise EpisodeError(f"{root}/meta/episodes: no episode metadata parquet files")
    episodes_meta = [row for f in ep_files for row in pq.read_table(f).to_pylist()]
    tasks = {}
    if (root / "meta" / "tasks.parquet").is_file():
        for row in pq.read_table(root / "meta" / "tasks.parquet").to_pylist():
            tasks[row.get("task_index")] = row.get("task", row.get("__index_level_0__", ""))
    data_cache: dict[Path, dict] = {}
    video_cache: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for meta in sorted(episodes_meta, key=lambda r: r["episode_index"]):
        idx = int(meta["episode_index"])
        where = f"{root}: episode {idx}"
        ep_tasks = meta.get("tasks") or []
        language = ep_tasks[0] if ep_tasks else ""
        if source.task and source.task.lower() not in " ".join(ep_tasks).lower():
            continue
        data_path = root / info["data_path"].format(
            chunk_index=int(meta["data/chunk_index"]), file_index=int(meta["data/file_index"])
        )
        if data_path not in data_cache:
            if not data_path.is_file():
                raise EpisodeError(f"{where}: data file {data_path} is missing")
            data_cache[data_path] = pq.read_table(data_path).to_pydict()
        table = data_cache[data_path]
        rows = [i for i, e in enumerate(table["episode_index"]) if e == idx]
        if not rows:
            raise EpisodeError(f"{where}: no rows in {data_path}")
        rows = sorted(rows, key=lambda i: table["frame_index"][i])

        def column(key: str, rows=rows, table=table, where=where) -> np.ndarray:
            try:
                return np.asarray([table[key][i] for i in rows], dtype=np.float64).reshape(
                    len(rows), -1
                )
            except (KeyError, ValueError) as exc:
                raise EpisodeError(f"{where}: feature {key!r} unreadable ({exc})") from exc

        times = column("timestamp")[:, 0]
        state = column(source.state_key)
        pos = state[:, pos_slice]
        if pos.shape[1] != 3:
            raise EpisodeError(
                f"{where}: {source.state_key}[{source.eef_pos_index}] has {pos.shape[1]} "
                "values; the EEF position needs 3 (--eef-pos-index)"
            )
        quat = _rotation(state[:, rot_slice], source.eef_rot, f"{where}: {source.state_key}")
        grip = column(source.gripper_key)[:, grip_slice]
        if grip.shape[1] != 1:
            raise EpisodeError(f"{where}: --gripper-index must pick one value")
        joints = column(source.joints_key) if source.joints_key else np.zeros((len(rows), 0))
        vkey = f"videos/{image_key}"
        video_path = root / info["video_path"].format(
            video_key=image_key,
            chunk_index=int(meta[f"{vkey}/chunk_index"]),
            file_index=int(meta[f"{vkey}/file_index"]),
        )
        if video_path not in video_cache:
            if not video_path.is_file():
                raise EpisodeError(f"{where}: video {video_path} is missing")
            video_cache[video_path] = _decode_video(video_path)
        vt, vframes = video_cache[video_path]
        want = float(meta[f"{vkey}/from_timestamp"]) + times
        k = np.clip(np.searchsorted(vt, want), 1, len(vt) - 1)
        k = np.where(np.abs(vt[k - 1] - want) <= np.abs(vt[k] - want), k - 1, k)
        half = 0.5 / fps if fps > 0 else 0.025
        off = np.abs(vt[k] - want)
        if np.any(off > half + 1e-4):
            bad = int(np.argmax(off))
            raise EpisodeError(
                f"{where}: no video frame of {video_path.name} within {half * 1e3:.0f} ms of "
                f"frame {bad} (t = {want[bad]:.3f} s; the video spans {vt[0]:.3f}-{vt[-1]:.3f} s)"
            )
        rgb = vframes[k]
        if rgb.shape[1:3] != hw:
            raise EpisodeError(
                f"{where}: video frames are {rgb.shape[2]}x{rgb.shape[1]}, info.json says "
                f"{hw[1]}x{hw[0]} (the calibration is for the latter)"
            )
        out.append(
            Episode(
                rgb=rgb,
                K=K,
                T_world_cam=T,
                eef_pos=pos,
                eef_quat=quat,
                gripper=grip[:, 0].copy(),
                joints=joints,
                time=times - times[0],
                name=f"episode_{idx:06d}",
                language=language or tasks.get(0, ""),
                meta={"source": "lerobot", "root": str(root), "episode_index": idx},
            )
        )
    if not out:
        raise EpisodeError(f"{root}: no episode matches --task {source.task!r}")
    return out
