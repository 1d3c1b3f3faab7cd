"""Random-weight checkpoints of the training presets for benchmarks (latency does not depend
on the weights; accuracy does: see bench_inference's real-frame figures)."""

from __future__ import annotations

from pathlib import Path


def build_checkpoint(preset: str, out_dir: str | Path, seed: int = 0):
    """Save a random-initialised `preset` model under out_dir/<preset>_ck; returns the dir."""
    import torch

    from para_ros.data.synthetic import make_episodes
    from para_training import checkpoint as ckpt
    from para_training.configs import DataConfig, get_preset
    from para_training.train import make_spec

    torch.manual_seed(seed)
    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    eps = make_episodes(2, n_frames=10, image_hw=(data.image_height, data.image_width))
    spec, _ = make_spec(eps, data, p["model"], log=lambda *_: None)
    model = ckpt.build_model(spec).eval()
    # Trained models have non-zero biases and O(1) LayerScale: random init's zero biases would
    # let graph optimisers drop the bias adds and flatter the optimised variants.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif name.endswith("gamma"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
    return ckpt.save_checkpoint(Path(out_dir) / f"{preset}_ck", model, spec)
