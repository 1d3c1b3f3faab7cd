"""Shared training fixtures: synthetic episodes and one tiny trained checkpoint per session."""

from __future__ import annotations

import pytest

from para_training.configs import DataConfig, TrainConfig, get_preset
from para_training.data.synthetic import make_episodes


@pytest.fixture(scope="session")
def episodes():
    return make_episodes(24, seed=0, n_frames=40)


def tiny_configs(out_dir, epochs: int, **train_overrides):
    p = get_preset("tiny")
    data = DataConfig(data=["synthetic"], val_fraction=0.17, **p["data"])
    cfg = TrainConfig(
        output_dir=str(out_dir),
        run_name="run",
        epochs=epochs,
        threads=1,
        progress=False,
        **{**p["train"], **train_overrides},
    )
    return data, dict(p["model"]), cfg


@pytest.fixture(scope="session")
def trained(tmp_path_factory, episodes):
    """(run folder, last metrics, all epoch metrics) of a 6-epoch tiny run (~20 s on 1 core)."""
    import json

    from para_training.train import train

    out = tmp_path_factory.mktemp("train")
    data, hparams, cfg = tiny_configs(out, epochs=6)
    run_dir, metrics = train(data, hparams, cfg, episodes=episodes)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run_dir, metrics, history
