"""Configurations picked by name, validated when built, with a CLI generated from them."""

from __future__ import annotations

import pytest

from para_training.configs import DataConfig, TrainConfig, get_preset
from para_training.policies.para_dino_kv import ParaDinoKVConfig
from para_training.policies.registry import lookup
from para_training.train import build_parser


def test_wrong_names_get_suggestions():
    with pytest.raises(KeyError, match=r"unknown preset 'tin'\. Did you mean \['tiny'\]"):
        get_preset("tin")
    with pytest.raises(KeyError, match=r"unknown model architecture 'para_dino'.*para_dino_kv"):
        lookup("para_dino")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DataConfig(rotation_mode="quat"), "rotation_mode must be pca1d, euler or kmeans"),
        (lambda: DataConfig(val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
        (lambda: TrainConfig(lr=0.0), "TrainConfig.lr must be > 0"),
        (lambda: ParaDinoKVConfig(d_model=100, n_heads=8), "must be divisible by n_heads"),
    ],
)
def test_invalid_configs_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_cli_has_a_flag_per_field_with_the_seed_names():
    args = build_parser().parse_args(
        [
            "data.hdf5",
            "--rotation_loss_weight",
            "0.5",
            "--gripper_loss_weight",
            "0.5",
            "--tf_layers",
            "5",
            "--no-progress",
        ]
    )
    assert args.data == ["data.hdf5"] and args.tf_layers == 5 and args.progress is False
    # data-derived model sizes (rotation_classes, height_min, ...) are not flags: the data sets
    # them; the data's own settings are (image_height belongs to DataConfig)
    assert not hasattr(args, "rotation_classes") and not hasattr(args, "height_min")
    assert hasattr(args, "image_height")
