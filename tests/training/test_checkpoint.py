"""Checkpoint round trip and shape-aware resume across a changed head."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from para_ros.core.contract import RotationSpec
from para_training import checkpoint as ckpt
from para_training.train import make_spec, train
from tests.conftest import tiny_configs


def _spec_and_model(episodes, data, hparams):
    spec, _cfg = make_spec(episodes, data, hparams, log=lambda *_: None)
    return spec, ckpt.build_model(spec)


def test_round_trip_same_outputs(tmp_path, episodes):
    data, hparams, _ = tiny_configs(tmp_path, 1)
    spec, model = _spec_and_model(episodes, data, hparams)
    model.eval()
    path = ckpt.save_checkpoint(tmp_path / "ck", model, spec)
    loaded, spec2 = ckpt.load_model(path)
    assert spec2 == spec
    img = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    start = torch.tensor([[10.0, 20.0, 0.9], [40.0, 30.0, 1.0]])
    with torch.no_grad():
        a, b = model(img, start), loaded(img, start)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_corrupt_checkpoint_is_refused(tmp_path, episodes):
    data, hparams, _ = tiny_configs(tmp_path, 1)
    spec, model = _spec_and_model(episodes, data, hparams)
    path = ckpt.save_checkpoint(tmp_path / "ck", model, spec)
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["hyperparameters"]["d_model"] = 32  # weights no longer fit the config
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ckpt.CheckpointError, match=r"weights do not match config\.json"):
        ckpt.load_model(path)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint folder"):
        ckpt.load_model(tmp_path)


def test_resume_across_changed_head_reports_counts(tmp_path, episodes, capsys):
    # the seed's v7 -> v9 surgery: rotation 3 x 32 euler -> 48 pca1d, tf_layers 2 -> 5
    data, hparams, cfg = tiny_configs(tmp_path, 1, max_steps_per_epoch=2)
    old_data = dataclasses.replace(data, rotation_mode="euler", rotation_bins=32)
    old_spec, old_model = _spec_and_model(episodes, old_data, {**hparams, "tf_layers": 2})
    assert old_spec.rotation == dataclasses.replace(old_spec.rotation, mode="euler")
    assert old_model.rotation_out.out_features == 96
    old = ckpt.save_checkpoint(tmp_path / "v7", old_model, old_spec)

    new_data = dataclasses.replace(data, rotation_mode="pca1d", rotation_bins=48)
    new_spec, new_model = _spec_and_model(episodes, new_data, {**hparams, "tf_layers": 5})
    report = ckpt.load_weights_shape_aware(new_model, load_file(old / "model.safetensors"))
    assert report.shape_skipped == ["rotation_out.bias", "rotation_out.weight"]
    per_layer = [k for k in new_model.state_dict() if k.startswith("decoder.layers.0.")]
    assert len(report.missing) == 3 * len(per_layer) + 2  # layers 2, 3, 4 + the new head
    assert all(
        k.startswith(
            ("decoder.layers.2.", "decoder.layers.3.", "decoder.layers.4.", "rotation_out.")
        )
        for k in report.missing
    )
    assert len(report.loaded) == len(old_model.state_dict()) - 2
    assert report.unexpected == []

    # the same through para-train --resume_from, which prints the seed-style line
    cfg = dataclasses.replace(cfg, resume_from=str(old), run_name="v9")
    train(new_data, {**hparams, "tf_layers": 5}, cfg, episodes=episodes)
    out = capsys.readouterr().out
    expected = (
        f"loaded {len(report.loaded)} keys, shape-skipped 2, "
        f"missing {len(report.missing)}, unexpected 0"
    )
    assert expected in out
    assert "shape-skipped: rotation_out.bias, rotation_out.weight" in out
    assert isinstance(new_spec.rotation, RotationSpec) and new_spec.rotation.n_bins == 48
