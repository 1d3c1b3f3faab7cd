"""Moved to `para_ros.data.hdf5_io` (the pure side); this alias keeps old imports working."""

import sys

from para_ros.data import hdf5_io as _moved

sys.modules[__name__] = _moved
