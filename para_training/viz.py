"""Training visualisations as PNG (matplotlib, Agg backend; no display needed).

One figure per sample: a row of heatmap overlays (one panel per t: the graph's `heatmap`
output, the step's cell probability, max over z for a voxel volume; GT cell as a circle,
argmax as a cross), a row of gripper distributions and a row of rotation distributions (one
panel per t, GT bin marked). Models without a `heatmap` output get no figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from para_ros.core.contract import PolicySpec


def save_sample_figure(
    path: Path, spec: PolicySpec, out: dict, pred: dict, batch: dict, b: int = 0
) -> Path:
    T = spec.window.steps
    H, W = spec.image.height, spec.image.width
    Hg, Wg = spec.grid.height, spec.grid.width
    image = batch["image"][b].numpy()
    heat = pred["heatmap"][b].float().detach().cpu().numpy()  # (T, Hg, Wg)
    grip = torch.softmax(pred["gripper_logits"][b].float(), -1).detach().cpu().numpy()
    rot = pred["rotation_logits"][b].float()
    if spec.rotation.mode == "euler":
        rot = rot.view(T, 3, -1)[:, 2]  # yaw axis only, for the strip
    rot = torch.softmax(rot, -1).detach().cpu().numpy()
    fig, axes = plt.subplots(3, T, figsize=(2.2 * T, 6.4), squeeze=False)
    for t in range(T):
        ax = axes[0, t]
        ax.imshow(image)
        ax.imshow(heat[t], extent=(0, W, H, 0), alpha=0.55, cmap="inferno")
        gt = batch["target_pixel"][b, t].numpy()
        _z, i, j = pred["voxel"][b, t].tolist()
        ax.plot(gt[0], gt[1], "o", mfc="none", mec="cyan", ms=9, label="GT")
        ax.plot((j + 0.5) * W / Wg, (i + 0.5) * H / Hg, "x", color="lime", ms=9, label="pred")
        ax.set_title(f"t={t} p={pred['voxel_prob'][b, t]:.2f}", fontsize=8)
        ax.axis("off")
        axes[1, t].bar(np.arange(grip.shape[1]), grip[t], color="tab:blue")
        axes[1, t].axvline(int(batch["gripper_bin"][b, t]), color="red", lw=1)
        axes[1, t].set_title("gripper", fontsize=8)
        axes[2, t].bar(np.arange(rot.shape[1]), rot[t], color="tab:green")
        gt_rot = batch["rotation_bin"][b, t]
        gt_rot = int(gt_rot[2]) if gt_rot.ndim else int(gt_rot)
        axes[2, t].axvline(gt_rot, color="red", lw=1)
        axes[2, t].set_title("rotation", fontsize=8)
        for ax in (axes[1, t], axes[2, t]):
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
