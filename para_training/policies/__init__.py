"""Registered policies: importing this package registers every one (policies.registry)."""

from para_training.policies import (  # noqa: F401
    ar2d,
    coord_regression,
    para_dino_kv,
    para_single_frame,
    voxel_token,
)
