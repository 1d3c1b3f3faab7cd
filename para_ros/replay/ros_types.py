"""Message types by name, for rclpy (classes) and for rosbags (a typestore that also knows
para_ros/msg/PolicyAction and EpisodeStatus, from the package's own .msg files)."""

from __future__ import annotations

import importlib
from functools import lru_cache

from para_ros.resources import share_dir


def msg_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    pkg, kind, name = msgtype.split("/")
    if kind != "msg":
        raise ValueError(f"{msgtype}: only messages (pkg/msg/Name) can be replayed")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


@lru_cache(maxsize=1)
def typestore():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for f in sorted((share_dir() / "msg").glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"para_ros/msg/{f.stem}"))
    store.register(types)
    return store
