"""Moved to `para_ros.data.readers` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import readers as _moved

sys.modules[__name__] = _moved
