"""`para-train DATA...`: train a PARA model; also runs under `torchrun --nproc_per_node N`.

Loss (seed): volume CE per timestep over the flattened Z*Hg*Wg voxels
             + gripper_loss_weight * gripper CE + rotation_loss_weight * rotation CE.
Every epoch: validation metrics (para_training.metrics), TensorBoard scalars, metrics.jsonl,
a PNG visualisation, and checkpoints `latest/` and `best/` (lowest val_3d_mm, else val_pix).
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
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from para_ros.core.contract import PolicySpec
from para_ros.data.episode import Episode, EpisodeError
from para_ros.data.readers import load_episodes
from para_ros.data.source import DataSource, add_source_args, describe, source_from_args
from para_training import checkpoint as ckpt
from para_training.cli import add_dataclass_args, dataclass_from_args
from para_training.configs import DataConfig, TrainConfig, get_preset
from para_training.data.augment import AugmentConfig
from para_training.data.dataset import IGNORE_INDEX, ParaWindowDataset, sample_index
from para_training.data.stats import build_spec, compute_stats
from para_training.metrics import MetricAccumulator, predictions_from_logits
from para_training.policies.para_dino_kv import ParaDinoKVConfig
from para_training.policies.para_dino_kv.configuration_para_dino_kv import SIZE_FIELDS
from para_training.rotation_basis import default_basis_path, fit_rotation, load_basis
from para_training.viz import save_sample_figure


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    ids = list(range(n))
    random.Random(seed).shuffle(ids)
    n_val = 0 if val_fraction <= 0 or n < 2 else max(1, round(n * val_fraction))
    return sorted(ids[n_val:]), sorted(ids[:n_val])


def make_spec(
    episodes: list[Episode], data: DataConfig, model_hparams: dict, log=print
) -> tuple[PolicySpec, ParaDinoKVConfig]:
    """The PolicySpec of this dataset (statistics over every episode, before any split)."""
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
    model_cfg = ParaDinoKVConfig.from_spec(spec, **model_hparams)
    spec = spec.replace(
        model=dataclasses.replace(
            spec.model, architecture="para_dino_kv", hyperparameters=model_cfg.to_dict()
        )
    )
    return spec, model_cfg


def compute_loss(out: dict, batch: dict, spec: PolicySpec, cfg: TrainConfig) -> dict:
    vol = out["volume_logits"].flatten(2)  # (B, T, Z*Hg*Wg)
    target = batch["voxel_index"]  # (B, T)
    if (target != IGNORE_INDEX).any():
        loss_v = F.cross_entropy(vol.flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX)
    else:
        loss_v = vol.sum() * 0.0
    loss_g = F.cross_entropy(out["gripper_logits"].flatten(0, 1), batch["gripper_bin"].flatten())
    rot = out["rotation_logits"]  # (B, T, R)
    if spec.rotation.mode == "euler":
        rot = rot.reshape(*rot.shape[:2], 3, -1)  # (B, T, 3, n)
        loss_r = F.cross_entropy(rot.flatten(0, 2), batch["rotation_bin"].flatten())
    else:
        loss_r = F.cross_entropy(rot.flatten(0, 1), batch["rotation_bin"].flatten())
    total = loss_v + cfg.gripper_loss_weight * loss_g + cfg.rotation_loss_weight * loss_r
    return {"loss": total, "v": loss_v, "g": loss_g, "r": loss_r}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True)
        if k in ("image", "start", "voxel_index", "gripper_bin", "rotation_bin")
        else v
        for k, v in batch.items()
    }


@torch.no_grad()
def validate(model, loader, spec: PolicySpec, cfg: TrainConfig, device, vis_path=None) -> dict:
    model.eval()
    acc = MetricAccumulator(spec)
    losses = []
    for k, batch in enumerate(loader):
        gb = _to(batch, device)
        out = model(gb["image"], gb["start"])
        losses.append(float(compute_loss(out, gb, spec, cfg)["loss"]))
        pred = predictions_from_logits(out, spec)
        acc.add(pred, batch)
        if vis_path is not None and k == 0:
            save_sample_figure(vis_path, spec, out, pred, batch)
    model.train()
    return {**acc.summary(), "val_loss": float(np.mean(losses)) if losses else float("nan")}


def train(
    data: DataConfig,
    model_hparams: dict,
    cfg: TrainConfig,
    episodes: list[Episode] | None = None,
    source: DataSource | None = None,
) -> tuple[Path, dict]:
    """Train; returns (run folder, last validation metrics). Callable from tests."""
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
    spec, model_cfg = make_spec(episodes, data, model_hparams, log)
    train_ids, val_ids = split_episodes(len(episodes), data.val_fraction, cfg.seed)
    augment = AugmentConfig(
        data.augment_rotation_deg, data.augment_rotation_prob, data.augment_color
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

    from para_training.policies.registry import make_model

    model = make_model("para_dino_kv", model_cfg).to(device)
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
        sums = {"loss": 0.0, "v": 0.0, "g": 0.0, "r": 0.0}
        n = 0
        for k, batch in enumerate(bar):
            if k >= steps_per_epoch:
                break
            for group in optim.param_groups:
                group["lr"] = lr_at(step)
            gb = _to(batch, device)
            out = wrapped(gb["image"], gb["start"])
            losses = compute_loss(out, gb, spec, cfg)
            optim.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optim.step()
            step += 1
            n += 1
            for key in sums:
                sums[key] += losses[key].item()
            bar.set_postfix(
                v=f"{losses['v'].item():.3f}",
                g=f"{losses['g'].item():.3f}",
                r=f"{losses['r'].item():.3f}",
            )
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
            score = metrics.get("val_3d_mm", metrics.get("val_pix", metrics["train_loss"]))
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--preset", default="", help="named configuration (tiny, vits224, ...)")
    add_dataclass_args(ap, DataConfig, "data", positional="data", skip=SOURCE_FIELDS)
    add_source_args(ap)
    add_dataclass_args(ap, ParaDinoKVConfig, "model", skip=SIZE_FIELDS)
    add_dataclass_args(ap, TrainConfig, "training")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    preset = get_preset(args.preset) if args.preset else {"data": {}, "model": {}, "train": {}}
    try:
        data = dataclass_from_args(DataConfig, args, preset["data"])
        cfg = dataclass_from_args(TrainConfig, args, preset["train"])
        model_fields = {f.name for f in dataclasses.fields(ParaDinoKVConfig)} - SIZE_FIELDS
        hparams = dict(preset["model"])
        hparams.update(
            {k: getattr(args, k) for k in model_fields if getattr(args, k, None) is not None}
        )
        source = source_from_args(args)
        data.world_frame = source.world_frame
        run_dir, _metrics = train(data, hparams, cfg, source=source)
    except (EpisodeError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"para-train: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
