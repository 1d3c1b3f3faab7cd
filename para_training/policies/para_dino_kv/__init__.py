from para_training.policies.para_dino_kv.configuration_para_dino_kv import ParaDinoKVConfig
from para_training.policies.para_dino_kv.modeling_para_dino_kv import ParaDinoKV

__all__ = ["ParaDinoKV", "ParaDinoKVConfig"]
