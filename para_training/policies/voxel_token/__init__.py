from para_training.policies.voxel_token.configuration_voxel_token import VoxelTokenConfig
from para_training.policies.voxel_token.modeling_voxel_token import (
    VoxelAbs,
    VoxelRel,
    VoxelTokenPolicy,
)

__all__ = ["VoxelAbs", "VoxelRel", "VoxelTokenConfig", "VoxelTokenPolicy"]
