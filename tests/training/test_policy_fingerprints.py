"""Every registered policy, built from its tiny preset with seed 0, against a recorded
fingerprint (tests/training/policy_fingerprints.json): the state_dict's keys, shapes and dtypes
in order (what a checkpoint holds: `load_state_dict(strict=True)` of an older one needs the
same), the config's fields in order with their defaults and help (the `para-train` flags and
the contract's hyper-parameters), and the forward / predict / loss outputs on fixed inputs.

A refactoring of the policies must leave all of it unchanged. After a deliberate change of an
architecture, rewrite the record and say so in the commit:

    python -m tests.training.test_policy_fingerprints --write
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

RECORD = Path(__file__).with_name("policy_fingerprints.json")
# (architecture, its tiny preset); each also built with gripper_input (a 4-wide start keypoint)
CASES = (
    ("para_dino_kv", "tiny"),
    ("para_single_frame", "tiny_single_frame"),
    ("ar2d", "tiny_ar2d"),
    ("voxel_abs", "tiny_voxel_abs"),
    ("voxel_rel", "tiny_voxel_rel"),
    ("coord_regression", "tiny_coord"),
)
TAGS = [f"{arch}/gripper_input={grip}" for arch, _ in CASES for grip in (False, True)]


def _digest(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _given(value):
    return "MISSING" if value is dataclasses.MISSING else value


def _batch(spec, B: int) -> dict:
    """A fixed training batch of targets (one target out of the image)."""
    g = torch.Generator().manual_seed(11)
    T, Z, Hg, Wg = spec.window.steps, spec.height.n_bins, spec.grid.height, spec.grid.width
    vox = torch.stack([torch.randint(0, n, (B, T), generator=g) for n in (Z, Hg, Wg)], dim=-1)
    flat = vox[..., 0] * Hg * Wg + vox[..., 1] * Wg + vox[..., 2]  # (B, T)
    flat[0, 1] = -100
    euler = spec.rotation.mode == "euler"
    n_rot = spec.rotation.n_classes // (3 if euler else 1)
    return {
        "voxel": vox,  # (B, T, 3)
        "voxel_index": flat,
        "gripper_bin": torch.randint(0, spec.gripper.n_bins, (B, T), generator=g),
        "rotation_bin": torch.randint(0, n_rot, (B, T, 3) if euler else (B, T), generator=g),
        "target_pos": torch.randn(B, T, 3, generator=g, dtype=torch.float64),
    }


def fingerprint(arch: str, preset: str, gripper_input: bool, episodes) -> dict:
    from para_training.configs import DataConfig, TrainConfig, get_preset
    from para_training.policies.registry import lookup
    from para_training.train import make_spec

    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    hp = {**p["model"], "gripper_input": gripper_input}
    spec, cfg = make_spec(episodes[:4], data, hp, lambda *_: None, arch)
    entry = lookup(arch)
    torch.manual_seed(0)
    model = entry.build(cfg).eval()
    state = model.state_dict()
    fields = [  # MISSING's repr holds an address: its name instead
        repr((f.name, str(f.type), _given(f.default), _given(f.default_factory), dict(f.metadata)))
        for f in dataclasses.fields(entry.config_cls)
    ]
    io = model.export_io(spec)
    feeds = entry.example_inputs(spec, 3, seed=7)
    inputs = [feeds[n] for n in io.input_names]
    batch = _batch(spec, 3)
    train_cfg = TrainConfig(output_dir="unused", gripper_loss_weight=0.7, rotation_loss_weight=0.3)
    with torch.no_grad():
        out = model(*inputs)
        parts = {"forward": out, "predict": model.predict(out, spec)}
        parts["loss"] = model.compute_loss(out, batch, spec, train_cfg)
        if arch == "ar2d":  # teacher forcing, the training pass
            parts["teacher"] = model(*inputs, batch["voxel"])
    # float outputs by two sums without cancellation (robust to the BLAS); integer outputs
    # (argmax picks) are left out: a near tie may pick otherwise on another machine
    outputs = {
        f"{part}/{k}": [float(v.double().abs().sum()), float(v.double().square().sum())]
        for part, d in parts.items()
        for k, v in d.items()
        if v.is_floating_point()
    }
    return {
        "state_dict": _digest(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in state.items()),
        "n_tensors": len(state),
        "parameters_abs_sum": float(sum(v.double().abs().sum() for v in state.values())),
        "config_fields": _digest(fields),
        "size_fields": sorted(entry.size_fields),
        "hyperparameters": list(cfg.to_dict()),
        "io": [list(io.input_names), list(io.output_names)],
        "outputs": outputs,
    }


def _all(episodes) -> dict:
    return {
        f"{arch}/gripper_input={grip}": fingerprint(arch, preset, grip, episodes)
        for arch, preset in CASES
        for grip in (False, True)
    }


def _dumps(record: dict) -> str:
    """The record as JSON, a line per value (and per output), to read in a diff."""
    lines = []
    for tag, fp in record.items():
        lines.append(f"  {json.dumps(tag)}: {{")
        for key, value in fp.items():
            if key == "outputs":
                rows = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
                lines.append('    "outputs": {\n' + ",\n".join(rows) + "\n    }")
            else:
                lines.append(f"    {json.dumps(key)}: {json.dumps(value)},")
        lines.append("  },")
    body = "\n".join(lines).rstrip(",")
    return "{\n" + body.replace(",\n  },", "\n  },") + "\n}\n"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RECORD.read_text())


@pytest.mark.parametrize("tag", TAGS)
def test_the_policy_is_the_recorded_one(tag, recorded, episodes):
    arch, grip = tag.split("/gripper_input=")
    preset = dict(CASES)[arch]
    got = fingerprint(arch, preset, grip == "True", episodes)
    want = recorded[tag]
    for key in ("state_dict", "n_tensors", "config_fields", "size_fields", "hyperparameters"):
        assert got[key] == want[key], key
    assert got["io"] == want["io"]
    assert got["parameters_abs_sum"] == pytest.approx(want["parameters_abs_sum"], rel=1e-6)
    assert sorted(got["outputs"]) == sorted(want["outputs"])
    for k, v in want["outputs"].items():
        assert got["outputs"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k


def test_every_registered_policy_is_fingerprinted():
    from para_training.policies.registry import names

    assert sorted(arch for arch, _ in CASES) == names()


if __name__ == "__main__":  # python -m tests.training.test_policy_fingerprints --write
    from para_ros.data.synthetic import make_episodes

    torch.set_num_threads(1)
    record = _all(make_episodes(24, seed=0, n_frames=40))  # tests/conftest.py's `episodes`
    if "--write" in sys.argv:
        RECORD.write_text(_dumps(record))
        print(f"wrote {RECORD}")
    else:
        print(json.dumps(record, indent=1))
