"""Checkpoint folders: weights, contract and optimizer state, with no pickle anywhere.

    <ckpt>/model.safetensors     model weights (persistent buffers included)
    <ckpt>/config.json           the PolicySpec; model.hyperparameters holds the full model
                                 config (sizes included), so the model is rebuilt from it alone
    <ckpt>/optimizer.safetensors optimizer tensors, keys "state.<param>.<name>"
    <ckpt>/trainer_state.json    epoch, step, metrics, optimizer param_groups

A folder is written under a temporary name and renamed when complete, so `latest/` and
`best/` are always whole checkpoints.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from para_ros.core.contract import PolicySpec
from para_training.policies.registry import lookup

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIM_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    spec: PolicySpec,
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: dict | None = None,
) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp / MODEL_FILE, metadata={"format": "pt"})
    (tmp / CONFIG_FILE).write_text(spec.to_json())
    record = dict(trainer_state or {})
    if optimizer is not None:
        osd = optimizer.state_dict()
        tensors = {}
        for pid, pstate in osd["state"].items():
            for name, value in pstate.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"state.{pid}.{name}"] = t.detach().cpu().contiguous()
        save_file(tensors, tmp / OPTIM_FILE)
        record["param_groups"] = osd["param_groups"]
    (tmp / STATE_FILE).write_text(json.dumps(record, indent=2, default=float))
    if path.exists():
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)
    return path


def read_spec(path: str | Path) -> PolicySpec:
    path = Path(path)
    cfg = path / CONFIG_FILE
    if not cfg.is_file():
        raise CheckpointError(f"{path}: not a checkpoint folder (no {CONFIG_FILE})")
    return PolicySpec.from_json(cfg.read_text())


def build_model(spec: PolicySpec, source: str = "config.json") -> torch.nn.Module:
    """Instantiate the architecture named by the spec from the config it carries. An
    unknown architecture, or a key of `model.hyperparameters` that its config does not have,
    is a CheckpointError naming the key path (and the close names)."""
    try:
        entry = lookup(spec.model.architecture)
    except KeyError as exc:
        raise CheckpointError(f"{source}: `model.architecture`: {exc.args[0]}") from exc
    try:
        cfg = entry.config_from_dict(dict(spec.model.hyperparameters), "model.hyperparameters")
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    return entry.build(cfg)


@dataclass
class LoadReport:
    loaded: list[str]
    shape_skipped: list[str]
    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        return (
            f"loaded {len(self.loaded)} keys, shape-skipped {len(self.shape_skipped)}, "
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}"
        )

    def details(self) -> str:
        lines = [str(self)]
        for title, keys in (
            ("shape-skipped", self.shape_skipped),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
        ):
            if keys:
                lines.append(f"  {title}: " + ", ".join(keys))
        return "\n".join(lines)


def load_weights_shape_aware(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Load what fits: keys whose shapes changed are dropped before loading (seed v9 resume)."""
    own = model.state_dict()
    skipped = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    keep = {k: v for k, v in state.items() if k in own and k not in skipped}
    result = model.load_state_dict(keep, strict=False)
    return LoadReport(
        loaded=sorted(keep),
        shape_skipped=skipped,
        missing=sorted(result.missing_keys),
        unexpected=sorted(k for k in state if k not in own),
    )


def load_model(path: str | Path, strict: bool = True) -> tuple[torch.nn.Module, PolicySpec]:
    """Model (eval mode, CPU) and spec from a checkpoint folder."""
    path = Path(path)
    spec = read_spec(path)
    model = build_model(spec, str(path / CONFIG_FILE))
    weights = path / MODEL_FILE
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {MODEL_FILE}")
    report = load_weights_shape_aware(model, load_file(weights))
    if strict and (report.shape_skipped or report.missing or report.unexpected):
        raise CheckpointError(f"{path}: weights do not match config.json: {report.details()}")
    return model.eval(), spec


def load_optimizer(path: str | Path, optimizer: torch.optim.Optimizer) -> bool:
    """Restore optimizer state saved by save_checkpoint; False when absent or incompatible."""
    path = Path(path)
    if not (path / OPTIM_FILE).is_file():
        return False
    record = json.loads((path / STATE_FILE).read_text())
    tensors = load_file(path / OPTIM_FILE)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": record["param_groups"]})
    except (ValueError, KeyError):
        return False  # the parameter set changed (e.g. a new head): start the optimizer afresh
    return True


def read_trainer_state(path: str | Path) -> dict:
    f = Path(path) / STATE_FILE
    return json.loads(f.read_text()) if f.is_file() else {}
