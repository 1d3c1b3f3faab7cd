"""Registered policies: importing this package registers every one (policies.registry)."""

from para_training.policies import coord_regression, para_dino_kv  # noqa: F401
