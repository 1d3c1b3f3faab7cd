"""Moved to `para_ros.data.episode` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import episode as _moved

sys.modules[__name__] = _moved
