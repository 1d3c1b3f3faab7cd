"""Training step time and peak memory (CPU): the tiny preset and the seed's ViT-S at 224.

Each configuration runs in its own process so its peak RSS is its own (ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys

STEPS = {"tiny": 20, "vits224": 5}
BATCH = {"tiny": 16, "vits224": 4}


def _child(preset: str) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    from para_ros.data.synthetic import make_episodes
    from para_training.configs import DataConfig, TrainConfig, get_preset
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.policies.registry import make_model
    from para_training.train import make_spec

    torch.set_num_threads(1)
    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    hw = (data.image_height, data.image_width)
    eps = make_episodes(12, n_frames=40, image_hw=hw)  # 468 samples: enough batches
    spec, cfg = make_spec(eps, data, p["model"], log=lambda *_: None, architecture=p.architecture)
    model = make_model(p.architecture, cfg)
    ds = ParaWindowDataset(eps, spec, sample_index(eps, list(range(12))))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH[preset], shuffle=True)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tcfg = TrainConfig()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    it = iter(loader)
    for _ in range(STEPS[preset] + 2):
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
        "batch": BATCH[preset],
        "image": list(hw),
        "threads": 1,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "step_median_ms": float(np.median(t)),
        "step_p90_ms": float(np.percentile(t, 90)),
        "step_min_ms": float(t.min()),
        "n": len(t),
        "samples_per_s": BATCH[preset] / float(np.median(t)) * 1e3,
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_train_MB": rss0 / 1024,
    }


def _run(preset: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_training", preset],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def benchmarks():
    return [(f"train_step_{p}", lambda p=p: _run(p)) for p in STEPS]


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1])))
