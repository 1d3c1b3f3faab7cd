"""para_dino_kv without learned cell position embeddings (`--no-cell_position_embedding`):
the volume keys are scored against features that carry no learned per-cell prior."""

from __future__ import annotations

import dataclasses

import torch

from para_training.checkpoint import load_model
from para_training.export import export_onnx, parity
from para_training.policies.registry import make_model
from para_training.train import build_parser, train
from tests.conftest import tiny_configs


def test_the_flag_reaches_the_model_config():
    ns = build_parser().parse_args(["d.hdf5", "--preset", "tiny", "--no-cell_position_embedding"])
    assert ns.cell_position_embedding is False
    ns = build_parser().parse_args(["d.hdf5", "--preset", "tiny"])
    assert ns.cell_position_embedding is None  # the preset's / the config's default: True


def test_without_cell_embeddings_the_cell_scores_are_the_features_alone(tmp_path, episodes):
    data, hparams, cfg = tiny_configs(tmp_path, epochs=1, max_steps_per_epoch=3)
    run_dir, _ = train(
        data, {**hparams, "cell_position_embedding": False}, cfg, episodes=episodes[:6]
    )
    model, _spec = load_model(run_dir / "best")
    keys = set(model.state_dict())
    assert not {k for k in keys if k.startswith("cell_")}, keys
    default = make_model(
        "para_dino_kv", dataclasses.replace(model.cfg, cell_position_embedding=True)
    )
    # everything else is the default model's
    assert set(default.state_dict()) - keys == {"cell_y_emb", "cell_x_emb"}
    # F is the refined patch features, nothing added
    image = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        patches = model.patch_tokens(image)
        feat = model.cell_features(patches)
        size = (model.cfg.grid_height, model.cfg.grid_width)
        pmap = patches.transpose(1, 2).reshape(2, -1, *model.patch_hw)
        up = torch.nn.functional.interpolate(
            model.feat_proj(pmap), size=size, mode="bilinear", align_corners=False
        )
        torch.testing.assert_close(feat, up + model.refine(up))
    onnx = tmp_path / "m.onnx"
    export_onnx(run_dir / "best", onnx)
    rep = parity(onnx, run_dir / "best", batch=2)
    assert rep["voxel_agreement"] == 1.0 and rep["voxel_prob_rel_err"] < 1e-4, rep
