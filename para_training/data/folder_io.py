"""Moved to `para_ros.data.folder_io` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import folder_io as _moved

sys.modules[__name__] = _moved
