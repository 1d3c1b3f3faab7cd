"""Model registry: architecture name -> (config class, model class).

The PolicySpec's `model.architecture` names an entry here. The seed's other variants
(single-frame PARA head, autoregressive 2D + 7-DoF heads, voxel-token models) register here
when they are added.
"""

from __future__ import annotations

import difflib
from typing import Any

from para_training.policies.para_dino_kv import ParaDinoKV, ParaDinoKVConfig

REGISTRY: dict[str, tuple[type, type]] = {
    "para_dino_kv": (ParaDinoKVConfig, ParaDinoKV),
}


def lookup(name: str) -> tuple[type, type]:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise KeyError(f"unknown model architecture {name!r}{hint} Known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def make_model(name: str, config: Any):
    _, model_cls = lookup(name)
    return model_cls(config)
