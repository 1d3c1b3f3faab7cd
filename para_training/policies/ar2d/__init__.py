from para_training.policies.ar2d.configuration_ar2d import Ar2dConfig
from para_training.policies.ar2d.modeling_ar2d import Ar2d

__all__ = ["Ar2d", "Ar2dConfig"]
