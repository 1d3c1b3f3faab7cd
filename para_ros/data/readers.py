"""Load episodes from any supported source: the format is `source.format`, or, with "auto",
chosen by what each path is:

*.hdf5 / *.h5 with a camera group  this project's demos (hdf5_io)
*.hdf5 / *.h5 with model_file      official LIBERO / robomimic demos (libero_io)
a folder holding meta/info.json    a LeRobot v3.0 dataset (lerobot_io; needs --calibration)
*.mcap / *.db3, or a bag folder    rosbag2, one bag = one episode (rosbag_io)
(holding metadata.yaml)
a folder of episode folders        plain episode folders (folder_io)
a folder of any of the above       every item, in name order (LIBERO files filtered by --task)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from para_ros.data.episode import Episode, EpisodeError
from para_ros.data.folder_io import is_episode_folder, read_folder
from para_ros.data.source import DataSource

HDF5 = (".hdf5", ".h5")


def is_bag(p: Path) -> bool:
    return p.suffix in (".mcap", ".db3") or (p.is_dir() and (p / "metadata.yaml").is_file())


def detect_format(p: Path) -> str:
    """The format of one path ('' when it is a folder of items to look into)."""
    from para_ros.data.lerobot_io import is_lerobot_dataset
    from para_ros.data.libero_io import is_libero_file

    if p.suffix in HDF5:
        return "libero" if is_libero_file(p) else "para-hdf5"
    if is_bag(p):
        return "rosbag"
    if is_lerobot_dataset(p):
        return "lerobot"
    if p.is_dir() and is_episode_folder(p):
        return "folder"
    if p.is_dir():
        return ""
    raise EpisodeError(
        f"{p}: unknown data format; expected an HDF5 file (this project's or official "
        "LIBERO/robomimic), a LeRobot v3.0 dataset folder (meta/info.json), a rosbag2 bag "
        "(.mcap/.db3 or a folder with metadata.yaml) or an episode folder"
    )


def _children(p: Path, source: DataSource) -> list[Path]:
    out = []
    for c in sorted(p.iterdir()):
        if c.suffix in HDF5:
            if source.task and source.task.lower() not in c.stem.lower():
                continue
            out.append(c)
        elif is_bag(c) or is_episode_folder(c) or (c / "meta" / "info.json").is_file():
            out.append(c)
        elif c.is_dir() and any(c.glob("*.hdf5")):  # a LIBERO suite folder
            out.append(c)
    return out


def load_episodes(
    paths: str | Path | list,
    source: DataSource | None = None,
    topics=None,
    T_world_cam: np.ndarray | None = None,
    bag_tolerance_s: float | None = None,
    reports: list | None = None,
) -> list[Episode]:
    """Every episode of `paths`. `topics`, `T_world_cam`, `bag_tolerance_s` override the
    source's bag settings (older callers); `reports` collects each bag's BagReport."""
    from para_ros.data import hdf5_io, rosbag_io

    source = source or DataSource()
    items = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    out: list[Episode] = []
    for p in items:
        if not p.exists():
            raise EpisodeError(f"{p}: no such file or folder")
        fmt = detect_format(p) if source.format == "auto" else source.format
        if fmt == "" or (p.is_dir() and fmt in ("libero", "para-hdf5")):
            children = _children(p, source)
            if not children:
                raise EpisodeError(
                    f"{p}: holds no HDF5 demos, LeRobot datasets, rosbag2 bags or episode "
                    "folders" + (f" matching --task {source.task!r}" if source.task else "")
                )
            out += load_episodes(children, source, topics, T_world_cam, bag_tolerance_s, reports)
        elif fmt == "para-hdf5":
            out += [_with_calibration(e, source.calibration) for e in hdf5_io.read_hdf5(p)]
        elif fmt == "libero":
            from para_ros.data.libero_io import read_libero

            out += read_libero(p, source)
        elif fmt == "lerobot":
            from para_ros.data.lerobot_io import read_lerobot

            out += read_lerobot(p, source)
        elif fmt == "rosbag":
            if p.is_dir() and not is_bag(p):
                bags = [c for c in sorted(p.iterdir()) if is_bag(c)]
                out += load_episodes(bags, source, topics, T_world_cam, bag_tolerance_s, reports)
                continue
            t, options, T = rosbag_io.options_from_source(source)
            ep, report = rosbag_io.read_bag(
                p,
                topics or t,
                source.tolerance if bag_tolerance_s is None else bag_tolerance_s,
                T if T_world_cam is None else T_world_cam,
                options=options,
            )
            if reports is not None:
                reports.append(report)
            out.append(ep)
        elif fmt == "folder":
            out.append(_with_calibration(read_folder(p), source.calibration))
        else:
            raise EpisodeError(f"{p}: unknown --format {fmt!r}")
    return out


def _with_calibration(ep: Episode, path: str) -> Episode:
    import dataclasses

    from para_ros.data.calibration import load_calibration

    if not path:
        return ep
    K, T = load_calibration(path, ep.image_hw)
    return dataclasses.replace(ep, K=K, T_world_cam=T)
