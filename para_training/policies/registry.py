"""Model registry: architecture name -> everything training, export and the contract need.

Each policy registers itself where it is defined (lerobot's pattern: `policies/<name>/`
with `configuration_<name>.py` and `modeling_<name>.py`):

    @register("my_policy", config=MyPolicyConfig, head="voxel_volume")
    class MyPolicy(PolicyModel): ...

An entry carries the config class (its fields are the `para-train --architecture NAME`
flags), the model class, which owns its loss (`compute_loss`), its prediction/decoding into
graph outputs (`predict`; the runtime decodes those by head family, para_ros.core.heads),
its export I/O (`export_io`: input and output names, dynamic axes; `example_inputs`) and the
head family written into the contract (`spec.model.head`). The PolicySpec's
`model.architecture` names an entry here. Nothing outside this module and the policies'
own folders names a particular architecture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from para_ros.core.contract import HEAD_FAMILIES, PolicySpec

DEFAULT_ARCHITECTURE = "para_dino_kv"


@dataclass(frozen=True)
class PolicyEntry:
    name: str
    config_cls: type  # a dataclass with policies.common.PolicyConfig
    model_cls: type  # a policies.common.PolicyModel
    head: str  # head family (contract.HEAD_FAMILIES)

    @property
    def size_fields(self) -> frozenset[str]:
        """Config fields set from the data, not from flags."""
        return self.config_cls.SIZE_FIELDS

    def make_config(self, spec: PolicySpec, hparams: dict, stats: Any = None):
        return self.config_cls.from_spec(spec, stats, **hparams)

    def config_from_dict(self, d: dict, where: str = "model.hyperparameters"):
        return self.config_cls.from_dict(d, where)

    def build(self, config):
        return self.model_cls(config)

    # the model's own functions, by name (what the registry carries)
    @property
    def compute_loss(self):
        return self.model_cls.compute_loss

    @property
    def predict(self):
        return self.model_cls.predict

    @property
    def export_io(self):
        return self.model_cls.export_io

    @property
    def example_inputs(self):
        return self.model_cls.example_inputs


REGISTRY: dict[str, PolicyEntry] = {}


def register(name: str, *, config: type, head: str):
    """Class decorator: register a model class under `name` with its config and head."""
    if head not in HEAD_FAMILIES:
        raise ValueError(f"policy {name!r}: unknown head family {head!r}; known {HEAD_FAMILIES}")

    def deco(model_cls: type) -> type:
        old = REGISTRY.get(name)
        if old is not None and old.model_cls.__qualname__ != model_cls.__qualname__:
            raise ValueError(f"architecture {name!r} registered twice ({old.model_cls})")
        REGISTRY[name] = PolicyEntry(name, config, model_cls, head)
        model_cls.architecture = name
        return model_cls

    return deco


def _load_policies() -> None:
    importlib.import_module("para_training.policies")  # its __init__ imports every policy


def names() -> list[str]:
    _load_policies()
    return sorted(REGISTRY)


def lookup(name: str) -> PolicyEntry:
    """The entry of `name`, or a KeyError naming the close names and every known one."""
    from para_training.configs import pick

    _load_policies()
    return pick(REGISTRY, name, "model architecture")


def make_model(name: str, config: Any):
    return lookup(name).build(config)
