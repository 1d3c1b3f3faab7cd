"""Replay reports: JSON (everything), a markdown summary and PNG plots, written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from para_ros.replay.evaluate import ReplayResult


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown(title: str, results: dict[str, ReplayResult], meta: dict) -> str:
    lines = [f"# {title}", ""]
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    keys = [
        "frames_evaluated",
        "val_pix",
        "val_pix_median",
        "val_3d_mm",
        "val_3d_mm_median",
        "val_height_mm",
        "val_grip_acc",
        "val_rot_err",
        "val_rot_rad",
        "val_confidence",
    ]
    lines += ["", "| bag | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r.summary.get(k, "")) for k in keys) + " |")
    lines += ["", "| bag | stage | median ms | p90 ms | p99 ms |", "|---|---|---|---|---|"]
    for name, r in results.items():
        for stage, st in r.latency_ms.items():
            if st:
                lines.append(
                    f"| {name} | {stage} | {st['median']:.3f} | {st['p90']:.3f} | "
                    f"{st['p99']:.3f} |"
                )
    for name, r in results.items():
        if r.skipped:
            lines += ["", f"Skipped frames in {name}:"]
            lines += [f"- {k}: {n}" for k, n in r.skipped.items()]
    return "\n".join(lines) + "\n"


def plots(
    out: Path,
    name: str,
    result: ReplayResult,
    episode,
    model_hw: tuple[int, int],
    n_samples: int = 4,
) -> list[Path]:
    """error_over_time.png and trajectories.png (recorded vs predicted pixels on frames)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fr = result.frames
    if not fr:
        return paths
    t = np.array([f["time"] for f in fr])
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, key, unit in ((axes[0], "pix_err", "px"), (axes[1], "err_3d_mm", "mm")):
        arr = np.array([[np.nan if x is None else x for x in f[key]] for f in fr])  # (N, T)
        ax.plot(t, arr[:, 0], label="step 1")
        ax.plot(t, np.nanmean(arr, axis=1), label="mean over steps", alpha=0.7)
        ax.set_ylabel(f"{key} ({unit})")
        ax.legend(fontsize=7)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    p = out / f"{name}_error_over_time.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)

    picks = np.linspace(0, len(fr) - 1, min(n_samples, len(fr))).astype(int)
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.4), squeeze=False)
    for ax, k in zip(axes[0], picks, strict=True):
        f = fr[k]
        img = np.asarray(episode.rgb[f["frame"]])
        sy, sx = img.shape[0] / model_hw[0], img.shape[1] / model_hw[1]
        gt = np.array(f["gt_pixels"]) * [sx, sy]
        pr = np.array(f["pred_pixels"]) * [sx, sy]
        ax.imshow(img)
        ax.plot(gt[:, 0], gt[:, 1], "o-", color="cyan", ms=4, label="recorded")
        ax.plot(pr[:, 0], pr[:, 1], "x--", color="magenta", ms=5, label="predicted")
        ax.set_title(f"t={f['time']:.2f}s", fontsize=8)
        ax.axis("off")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    p = out / f"{name}_trajectories.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths


def write_report(
    out: Path,
    title: str,
    results: dict[str, ReplayResult],
    episodes: dict,
    meta: dict,
    model_hw: tuple[int, int],
) -> Path:
    """Write report.json, summary.md and plots into `out` (via out.partial, renamed when
    complete: a failed run leaves no folder that looks finished)."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    payload = {
        "meta": meta,
        "bags": {
            n: {
                "summary": r.summary,
                "skipped": r.skipped,
                "latency_ms": r.latency_ms,
                "frames": r.frames,
            }
            for n, r in results.items()
        },
    }
    (tmp / "report.json").write_text(json.dumps(payload, indent=1))
    (tmp / "summary.md").write_text(markdown(title, results, meta))
    for name, r in results.items():
        plots(tmp, name, r, episodes[name], model_hw)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
