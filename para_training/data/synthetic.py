"""Moved to `para_ros.data.synthetic` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import synthetic as _moved

sys.modules[__name__] = _moved
