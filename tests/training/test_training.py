"""A real (tiny) training run learns the synthetic localisation task; its artefacts are whole."""

from __future__ import annotations

import numpy as np

from para_ros.core.contract import PolicySpec


def test_tiny_run_learns_localisation(trained):
    _run_dir, metrics, history = trained
    first, best_pix = history[0], min(h["val_pix"] for h in history)
    # 64 px image, 16 x 16 grid: one cell is 4 px. Predicting the image centre scores ~15 px.
    assert best_pix < 3.5, history
    assert metrics["val_pix"] < 4.0
    assert metrics["val_grip_acc"] > 0.9
    assert metrics["val_height_mm"] < 15.0  # height bins are 27.5 mm wide here
    assert history[-1]["train_loss"] < 0.5 * first["train_loss"]


def test_run_folder_is_complete(trained):
    run_dir, _, history = trained
    for name in ("latest", "best"):
        d = run_dir / name
        for f in (
            "model.safetensors",
            "config.json",
            "optimizer.safetensors",
            "trainer_state.json",
        ):
            assert (d / f).is_file(), f"{d}/{f}"
    spec = PolicySpec.from_json((run_dir / "latest" / "config.json").read_text())
    assert spec.model.architecture == "para_dino_kv"
    assert spec.model.hyperparameters["tf_layers"] == 2  # tiny preset
    assert spec.rotation.mode == "pca1d" and spec.rotation.n_bins == 12
    assert len(history) == 6
    pngs = sorted((run_dir / "vis").glob("epoch_*.png"))
    assert len(pngs) == 6 and pngs[0].stat().st_size > 5000
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))


def test_statistics_cover_every_episode(episodes, trained):
    """Height/gripper ranges come from the whole dataset, validation episodes included."""
    run_dir, _, _ = trained
    spec = PolicySpec.from_json((run_dir / "latest" / "config.json").read_text())
    z = np.concatenate([e.eef_pos[:, 2] for e in episodes])
    assert spec.height.min == z.min() - 0.01 and spec.height.max == z.max() + 0.01
    assert (spec.gripper.min, spec.gripper.max) == (-1.0, 1.0)
    assert spec.window.dt == 3 / 20.0  # stride 3 at 20 fps
