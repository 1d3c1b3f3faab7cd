from para_training.policies.para_single_frame.configuration_para_single_frame import (
    ParaSingleFrameConfig,
)
from para_training.policies.para_single_frame.modeling_para_single_frame import ParaSingleFrame

__all__ = ["ParaSingleFrame", "ParaSingleFrameConfig"]
