"""Load episodes from any supported source, chosen by what the path is.

*.hdf5 / *.h5                      LIBERO/robomimic-style demos (hdf5_io)
*.mcap / *.db3, or a bag folder    rosbag2, one bag = one episode (rosbag_io)
(holding metadata.yaml)
a folder of episode folders        plain episode folders (folder_io)
a folder of any of the above       every item, in name order
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from para_ros.data.episode import Episode, EpisodeError
from para_ros.data.folder_io import is_episode_folder, read_folder
from para_ros.data.rosbag_io import BagTopics


def _is_bag(p: Path) -> bool:
    return p.suffix in (".mcap", ".db3") or (p.is_dir() and (p / "metadata.yaml").is_file())


def load_episodes(
    paths: str | Path | list,
    topics: BagTopics | None = None,
    T_world_cam: np.ndarray | None = None,
    bag_tolerance_s: float = 0.02,
) -> list[Episode]:
    from para_ros.data import hdf5_io, rosbag_io

    topics = topics or BagTopics()

    items = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    out: list[Episode] = []
    for p in items:
        if not p.exists():
            raise EpisodeError(f"{p}: no such file or folder")
        if p.suffix in (".hdf5", ".h5"):
            out += hdf5_io.read_hdf5(p)
        elif _is_bag(p):
            out.append(rosbag_io.read_bag(p, topics, bag_tolerance_s, T_world_cam)[0])
        elif p.is_dir() and is_episode_folder(p):
            out.append(read_folder(p))
        elif p.is_dir():
            children = sorted(
                c
                for c in p.iterdir()
                if c.suffix in (".hdf5", ".h5") or _is_bag(c) or is_episode_folder(c)
            )
            if not children:
                raise EpisodeError(f"{p}: holds no HDF5 demos, rosbag2 bags or episode folders")
            out += load_episodes(children, topics, T_world_cam, bag_tolerance_s)
        else:
            raise EpisodeError(
                f"{p}: unknown data format; expected .hdf5/.h5, a rosbag2 bag (.mcap/.db3) "
                "or an episode folder"
            )
    return out
