"""Moved to `para_ros.data.rosbag_io` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import rosbag_io as _moved

sys.modules[__name__] = _moved
