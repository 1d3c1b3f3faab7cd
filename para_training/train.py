"""`para-train DATA...`: train a PARA model; also runs under `torchrun --nproc_per_node N`.

`--architecture NAME` picks the model from the registry (para_training.policies.registry;
default: a preset's architecture, else the registry's default); the model flags shown are that
architecture's config fields (`para-train --architecture NAME -h`). The model owns its loss
(`compute_loss`) and its predictions (`predict`, decoded for the metrics by the head family
as deployment decodes them).

Every epoch: validation metrics (para_training.metrics), TensorBoard scalars, metrics.jsonl,
a PNG visualisation (models with a `heatmap` output), and checkpoints `latest/` and `best/`
(lowest val_3d_mm, else val_pix).
Under DDP rank 0 alone validates and writes; the others wait at a barrier.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from para_ros.core.contract import PolicySpec
from para_ros.data.episode import Episode, EpisodeError
from para_ros.data.readers import load_episodes
from para_ros.data.source import DataSource, add_source_args, describe, source_from_args
from para_training import checkpoint as ckpt
from para_training.cli import add_dataclass_args, dataclass_from_args
from para_training.configs import PRESETS, DataConfig, TrainConfig, get_preset
from para_training.data.augment import AugmentConfig
from para_training.data.dataset import ParaWindowDataset, sample_index
from para_training.data.stats import build_spec, compute_stats
from para_training.metrics import MetricAccumulator
from para_training.policies.registry import DEFAULT_ARCHITECTURE, lookup, names
from para_training.rotation_basis import default_basis_path, fit_rotation, load_basis
from para_training.viz import save_sample_figure


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    ids = list(range(n))
    random.Random(seed).shuffle(ids)
    n_val = 0 if val_fraction <= 0 or n < 2 else max(1, round(n * val_fraction))
    return sorted(ids[n_val:]), sorted(ids[:n_val])


def make_spec(
    episodes: list[Episode],
    data: DataConfig,
    model_hparams: dict,
    log=print,
    architecture: str = DEFAULT_ARCHITECTURE,
):
    """(PolicySpec, model config) of this dataset (statistics over every episode, before any
    split) for the registered `architecture`; the spec names it and its head family."""
    basis = Path(data.rotation_basis) if data.rotation_basis else default_basis_path(data.data)
    if basis.is_file():
        rotation = load_basis(basis)
        log(f"rotation basis: {basis} ({rotation.mode}, {rotation.n_classes} classes)")
    else:
        rotation, report = fit_rotation(
            episodes,
            data.rotation_mode,
            data.rotation_bins,
            data.min_explained_variance,
            data.allow_low_variance,
        )
        log(report)
    stats = compute_stats(episodes)
    first = episodes[0]
    from para_ros.core.geometry import scale_intrinsics

    K_in = scale_intrinsics(first.K_at(0), first.image_hw, (data.image_height, data.image_width))
    spec = build_spec(
        stats,
        rotation,
        (data.image_height, data.image_width),
        (data.grid_height, data.grid_width),
        data.steps,
        data.stride,
        height_bins=data.height_bins,
        gripper_bins=data.gripper_bins,
        height_margin=data.height_margin,
        gripper_closed_sign=data.gripper_closed_sign,
        world_frame=data.world_frame,
        dataset_id=",".join(Path(p).name for p in data.data),
        camera_K=K_in,
        camera_T=first.T_world_cam_at(0),
    )
    entry = lookup(architecture)
    model_cfg = entry.make_config(spec, model_hparams, stats)
    spec = spec.replace(
        model=dataclasses.replace(
            spec.model,
            architecture=entry.name,
            head=entry.head,
            hyperparameters=model_cfg.to_dict(),
        )
    )
    return spec, model_cfg


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


@torch.no_grad()
def validate(model, loader, spec: PolicySpec, cfg: TrainConfig, device, vis_path=None) -> dict:
    model.eval()
    acc = MetricAccumulator(spec)
    losses = []
    for k, batch in enumerate(loader):
        gb = _to(batch, device)
        out = model(*model.batch_inputs(gb, spec))
        losses.append(float(model.compute_loss(out, gb, spec, cfg)["loss"]))
        pred = model.predict(out, spec)  # the graph's outputs, decoded by the head family
        acc.add(pred, batch)
        if vis_path is not None and k == 0 and "heatmap" in pred:
            save_sample_figure(vis_path, spec, out, pred, batch)
    model.train()
    return {**acc.summary(), "val_loss": float(np.mean(losses)) if losses else float("nan")}


def checkpoint_score(metrics: dict) -> float:
    """The number `best/` minimises: val_3d_mm (mm), else val_pix (px), else train_loss."""
    return float(
        metrics.get("val_3d_mm", metrics.get("val_pix", metrics.get("train_loss", float("inf"))))
    )


def train(
    data: DataConfig,
    model_hparams: dict,
    cfg: TrainConfig,
    episodes: list[Episode] | None = None,
    source: DataSource | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
) -> tuple[Path, dict]:
    """Train the registered `architecture`; returns (run folder, last validation metrics).
    Callable from tests."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    device = _device(cfg.device)
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0

    def log(msg: str) -> None:
        if is_main:
            print(msg, flush=True)

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    if episodes is None:
        if source is None:  # the bag topics of DataConfig (older callers)
            source = DataSource(
                image_topic=data.image_topic,
                camera_info_topic=data.camera_info_topic,
                eef_pose_topic=data.eef_pose_topic,
                camera_pose_topic=data.camera_pose_topic,
            )
        log(f"data source: {describe(source)}")
        episodes = load_episodes(data.data, source)
    spec, model_cfg = make_spec(episodes, data, model_hparams, log, architecture)
    train_ids, val_ids = split_episodes(len(episodes), data.val_fraction, cfg.seed)
    plane_z = data.augment_plane_z
    if data.augment_orbit_deg > 0 and not math.isfinite(plane_z):
        plane_z = float(min(episodes[e].eef_pos[:, 2].min() for e in train_ids))
        log(f"orbit augmentation: table plane z = {plane_z:.3f} m (lowest training EEF height)")
    augment = AugmentConfig(
        rotation_deg=data.augment_rotation_deg,
        rotation_prob=data.augment_rotation_prob,
        color=data.augment_color,
        orbit_deg=data.augment_orbit_deg,
        orbit_prob=data.augment_orbit_prob,
        plane_z=plane_z if data.augment_orbit_deg > 0 else None,
        orbit_warp=data.augment_orbit_warp,
        mirror_prob=data.augment_mirror_prob,
    )
    train_ds = ParaWindowDataset(episodes, spec, sample_index(episodes, train_ids), augment)
    val_ds = (
        ParaWindowDataset(episodes, spec, sample_index(episodes, val_ids)) if val_ids else None
    )
    if distributed:
        log(f"distributed: world_size={world} backend={dist.get_backend()} device={device}")
    log(
        f"data: {len(episodes)} episodes ({len(train_ids)} train / {len(val_ids)} val), "
        f"{len(train_ds)} training samples; T={spec.window.steps} stride={spec.window.stride} "
        f"dt={spec.window.dt:.3f}s height [{spec.height.min:.3f}, {spec.height.max:.3f}] m"
    )
    if augment.active:
        log(f"augmentation (training samples only): {augment}")

    model = lookup(architecture).build(model_cfg).to(device)
    log(f"model: {architecture} (head family {spec.model.head})")
    start_epoch, step = 0, 0
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or name.endswith("_emb") else decay).append(p)
    optim = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    if cfg.resume_from:
        from safetensors.torch import load_file

        report = ckpt.load_weights_shape_aware(
            model, load_file(Path(cfg.resume_from) / ckpt.MODEL_FILE)
        )
        log(f"resume from {cfg.resume_from}: {report.details()}")
        if not (report.shape_skipped or report.missing or report.unexpected):
            if ckpt.load_optimizer(cfg.resume_from, optim):
                state = ckpt.read_trainer_state(cfg.resume_from)
                start_epoch, step = int(state.get("epoch", -1)) + 1, int(state.get("step", 0))
                log(f"optimizer state restored; continuing at epoch {start_epoch}")

    wrapped = model
    if distributed:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = DistributedSampler(train_ds, shuffle=True, seed=cfg.seed) if distributed else None
    loader = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=False,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size) if val_ds else None
    steps_per_epoch = (
        len(loader) if not cfg.max_steps_per_epoch else min(len(loader), cfg.max_steps_per_epoch)
    )
    total_steps = max(1, steps_per_epoch * cfg.epochs)

    def lr_at(s: int) -> float:
        if s < cfg.warmup_steps:
            return cfg.lr * (s + 1) / cfg.warmup_steps
        frac = (s - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    run_dir = Path(cfg.output_dir) / (cfg.run_name or time.strftime("%Y%m%d-%H%M%S"))
    writer = None
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_config.json").write_text(
            json.dumps(
                {
                    "architecture": architecture,
                    "data": dataclasses.asdict(data),
                    "model": model_cfg.to_dict(),
                    "train": dataclasses.asdict(cfg),
                },
                indent=2,
            )
        )
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
    best = float("inf")
    if start_epoch > 0 and (run_dir / "best" / ckpt.STATE_FILE).exists():
        # resuming into the same run: `best/` only changes for a better epoch than its own
        best = checkpoint_score(ckpt.read_trainer_state(run_dir / "best").get("metrics", {}))
    metrics: dict = {}
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        bar = tqdm(
            loader,
            total=steps_per_epoch,
            desc=f"epoch {epoch}",
            disable=not (cfg.progress and is_main),
            leave=False,
        )
        sums: dict[str, float] = {}
        n = 0
        for k, batch in enumerate(bar):
            if k >= steps_per_epoch:
                break
            for group in optim.param_groups:
                group["lr"] = lr_at(step)
            gb = _to(batch, device)
            out = wrapped(*model.batch_inputs(gb, spec))
            losses = model.compute_loss(out, gb, spec, cfg)
            optim.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optim.step()
            step += 1
            n += 1
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value.item()
            bar.set_postfix({k: f"{v.item():.3f}" for k, v in losses.items() if k != "loss"})
            if writer is not None:
                for key, value in losses.items():
                    writer.add_scalar(f"train/{key}", value.item(), step)
                writer.add_scalar("train/lr", lr_at(step), step)
        epoch_s = time.perf_counter() - t0
        if distributed:
            dist.barrier()
        if is_main:
            metrics = {f"train_{k}": v / max(n, 1) for k, v in sums.items()}
            metrics.update(epoch=epoch, step=step, epoch_seconds=epoch_s)
            vis = (
                run_dir / "vis" / f"epoch_{epoch:03d}.png"
                if (epoch + 1) % cfg.vis_every_epochs == 0
                else None
            )
            if val_loader is not None:
                metrics.update(validate(model, val_loader, spec, cfg, device, vis))
            for key, value in metrics.items():
                if isinstance(value, float) and writer is not None:
                    writer.add_scalar(f"epoch/{key}", value, epoch)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            log(
                f"epoch {epoch}: "
                + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            )
            state = {"epoch": epoch, "step": step, "metrics": metrics}
            last = epoch == cfg.epochs - 1
            if (epoch + 1) % cfg.save_every_epochs == 0 or last:
                ckpt.save_checkpoint(run_dir / "latest", model, spec, optim, state)
            score = checkpoint_score(metrics)
            if score < best:
                best = score
                ckpt.save_checkpoint(run_dir / "best", model, spec, optim, state)
        if distributed:
            dist.barrier()
    if writer is not None:
        writer.close()
    if distributed:
        dist.destroy_process_group()
    return run_dir, metrics


# DataConfig's bag topics are data-source options (the same in every tool)
# (world_frame: the source's TF world frame is the world frame the PolicySpec records)
SOURCE_FIELDS = {
    "image_topic",
    "camera_info_topic",
    "eef_pose_topic",
    "camera_pose_topic",
    "world_frame",
}


def _pre_parser() -> argparse.ArgumentParser:
    """Stage 1: the flags that decide which model flags exist."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument(
        "--architecture",
        default=None,
        help=f"registered model (default: the preset's, else {DEFAULT_ARCHITECTURE}); "
        "its own flags are listed under `model` (para-train --architecture NAME -h)",
    )
    ap.add_argument(
        "--preset",
        default="",
        help=f"named configuration, for one architecture ({', '.join(sorted(PRESETS))})",
    )
    return ap


def build_parser(architecture: str = DEFAULT_ARCHITECTURE) -> argparse.ArgumentParser:
    """Stage 2: every flag, the model's from `architecture`'s config (KeyError with the close
    names when it is not registered)."""
    entry = lookup(architecture)
    ap = argparse.ArgumentParser(
        prog="para-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_pre_parser()],
    )
    add_dataclass_args(ap, DataConfig, "data", positional="data", skip=SOURCE_FIELDS)
    add_source_args(ap)
    add_dataclass_args(
        ap,
        entry.config_cls,
        f"model ({entry.name}; registered: {', '.join(names())})",
        skip=entry.size_fields,
    )
    add_dataclass_args(ap, TrainConfig, "training")
    return ap


def resolve_architecture(architecture: str | None, preset_name: str) -> str:
    """--architecture, else the preset's, else the default; a preset made for another
    architecture than the one asked for is refused (its model keys would not fit)."""
    preset = PRESETS.get(preset_name) if preset_name else None
    if architecture is None:
        return preset.architecture if preset is not None else DEFAULT_ARCHITECTURE
    lookup(architecture)  # the close names when unknown
    if preset is not None and preset.architecture != architecture:
        fits = sorted(n for n, p in PRESETS.items() if p.architecture == architecture)
        raise ValueError(
            f"preset {preset_name!r} is for architecture {preset.architecture!r}, not "
            f"{architecture!r} (presets for {architecture!r}: {fits})"
        )
    return architecture


def main(argv: list[str] | None = None) -> int:
    pre, _rest = _pre_parser().parse_known_args(argv)
    try:
        architecture = resolve_architecture(pre.architecture, pre.preset)
        parser = build_parser(architecture)
    except (KeyError, ValueError) as exc:
        print(f"para-train: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        preset = get_preset(args.preset) if args.preset else None
        entry = lookup(architecture)
        data = dataclass_from_args(
            DataConfig, args, preset["data"] if preset else {}, f"preset {args.preset!r}.data"
        )
        cfg = dataclass_from_args(
            TrainConfig, args, preset["train"] if preset else {}, f"preset {args.preset!r}.train"
        )
        model_fields = {f.name for f in dataclasses.fields(entry.config_cls)}
        hparams = preset["model"] if preset else {}
        hparams.update(
            {
                k: getattr(args, k)
                for k in model_fields - entry.size_fields
                if getattr(args, k, None) is not None
            }
        )
        source = source_from_args(args)
        data.world_frame = source.world_frame
        run_dir, _metrics = train(data, hparams, cfg, source=source, architecture=architecture)
    except (EpisodeError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"para-train: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
