"""Training step time and peak memory (CPU): the tiny preset, the 128 px presets of the model
matrix (para_dino_kv and the voxel-token model, with and without its per-voxel MLP) and the
seed's ViT-S at 224.

Each configuration runs in its own process so its peak RSS is its own (ru_maxrss).
python -m bench.run training -k libero128     # the matrix's presets, same run
"""

from __future__ import annotations

import json
import subprocess
import sys

# name -> (preset, model overrides, timed steps, batch)
CONFIGS = {
    "tiny": ("tiny", {}, 20, 16),
    "libero128": ("libero128", {}, 6, 16),
    "libero128_voxel_abs": ("libero128_voxel_abs", {}, 6, 16),
    # the voxel-token default before the matrix: a residual per-voxel MLP, 64 wide
    "libero128_voxel_abs_mlp": ("libero128_voxel_abs", {"voxel_layers": 1, "d_pos": 64}, 6, 16),
    "vits224": ("vits224", {}, 5, 4),
}


def _child(name: str) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    from para_ros.data.synthetic import make_episodes
    from para_training.configs import DataConfig, TrainConfig, get_preset
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.policies.registry import make_model
    from para_training.train import make_spec

    preset, overrides, steps, batch_size = CONFIGS[name]
    torch.set_num_threads(1)
    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    hw = (data.image_height, data.image_width)
    eps = make_episodes(12, n_frames=40, image_hw=hw)  # 468 samples: enough batches
    model_kw = {**p["model"], **overrides}
    spec, cfg = make_spec(eps, data, model_kw, log=lambda *_: None, architecture=p.architecture)
    model = make_model(p.architecture, cfg)
    ds = ParaWindowDataset(eps, spec, sample_index(eps, list(range(12))))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tcfg = TrainConfig()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    it = iter(loader)
    for _ in range(steps + 2):
        batch = next(it)
        t0 = time.perf_counter()
        out = model(*model.batch_inputs(batch, spec))
        loss = model.compute_loss(out, batch, spec, tcfg)["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.array(times[2:])
    return {
        "preset": preset,
        "overrides": overrides,
        "batch": batch_size,
        "image": list(hw),
        "threads": 1,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "step_median_ms": float(np.median(t)),
        "step_p90_ms": float(np.percentile(t, 90)),
        "step_min_ms": float(t.min()),
        "n": len(t),
        "samples_per_s": batch_size / float(np.median(t)) * 1e3,
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_train_MB": rss0 / 1024,
    }


def _run(name: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_training", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def benchmarks():
    return [(f"train_step_{n}", lambda n=n: _run(n)) for n in CONFIGS]


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1])))
