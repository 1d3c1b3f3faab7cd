"""End-to-end checks shared by the tests of the voxel_volume model variants registered besides
para_dino_kv (test_para_single_frame, test_ar2d, test_voxel_token): each is built from its name
through the registry, trains with the same pipeline, exports with parity and runs in OnnxPolicy.
`extras`: the runtime inputs (contract `model.extra_inputs`) a variant takes after image and
start_keypoint."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from para_ros.runtime.onnx_policy import Observation, OnnxPolicy
from para_training.configs import ConfigKeyError, DataConfig, get_preset
from para_training.export import export_onnx, parity
from para_training.policies.registry import lookup
from para_training.train import build_parser, main, make_spec, train


def configs(out_dir, preset: str, epochs: int, **train_overrides):
    """tests.conftest.tiny_configs of `preset`, plus its architecture."""
    from tests.conftest import tiny_configs

    data, hparams, cfg = tiny_configs(out_dir, epochs, preset=preset, **train_overrides)
    return data, hparams, cfg, get_preset(preset).architecture


def train_run(out_dir, episodes, preset: str, epochs: int = 3, steps: int = 8):
    """(run folder, per-epoch metrics) of a short run: `steps` optimiser steps per epoch, a
    short warm-up so that the few steps learn."""
    data, hparams, cfg, arch = configs(
        out_dir, preset, epochs, max_steps_per_epoch=steps, warmup_steps=4
    )
    run_dir, _ = train(data, hparams, cfg, episodes=episodes, architecture=arch)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run_dir, history


def built(preset: str, episodes, **data_overrides):
    """(PolicySpec, config, model) of `preset`'s architecture, built by name via the registry."""
    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **{**p["data"], **data_overrides})
    spec, cfg = make_spec(episodes[:4], data, p["model"], lambda *_: None, p.architecture)
    entry = lookup(p.architecture)
    torch.manual_seed(0)
    return spec, cfg, entry.build(cfg).eval()


VOXEL_INPUTS = ("image", "start_keypoint")


def check_builds_from_its_name(preset: str, episodes, extras: tuple[str, ...] = ()) -> None:
    arch = get_preset(preset).architecture
    entry = lookup(arch)
    assert entry.head == "voxel_volume" and entry.model_cls.architecture == arch
    spec, cfg, model = built(preset, episodes)
    assert isinstance(cfg, entry.config_cls) and isinstance(model, entry.model_cls)
    assert spec.model.architecture == arch and spec.model.head == "voxel_volume"
    # its config round-trips through the contract's hyper-parameters
    assert entry.config_from_dict(spec.model.hyperparameters) == cfg
    io = model.export_io(spec)
    assert io.input_names == (*VOXEL_INPUTS, *extras)
    assert tuple(e.name for e in io.extra_inputs) == extras
    feeds = entry.example_inputs(spec, 2)
    with torch.no_grad():
        pred = model.predict(model(*(feeds[n] for n in io.input_names)), spec)
    assert set(pred) == set(io.output_names)
    dtypes = {"int64": torch.int64, "float32": torch.float32}
    for t in io.outputs:  # the voxel_volume outputs, shaped as declared
        assert pred[t.name].dtype == dtypes[t.dtype], t
        assert tuple(pred[t.name].shape) == (2, *t.shape[1:]), t
    Z, Hg, Wg = spec.height.n_bins, spec.grid.height, spec.grid.width
    vox = pred["voxel"]
    assert ((vox >= 0) & (vox < torch.tensor([Z, Hg, Wg]))).all()
    assert ((pred["voxel_prob"] > 0) & (pred["voxel_prob"] <= 1)).all()
    torch.testing.assert_close(pred["heatmap"].sum((-2, -1)), torch.ones(2, spec.window.steps))


def check_flags_are_its_config_fields(arch: str, foreign_flag, capsys) -> None:
    entry = lookup(arch)
    parser = build_parser(arch)
    group = next(g for g in parser._action_groups if g.title.startswith(f"model ({arch};"))
    flags = {a.dest for a in group._group_actions}
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    assert flags == fields - entry.size_fields
    with pytest.raises(SystemExit) as exc:
        main(["--architecture", arch, "-h"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    for name in sorted(flags):
        assert f"--{name}" in help_text, name
    # a flag of another architecture is refused
    with pytest.raises(SystemExit) as exc:
        build_parser(arch).parse_args(["d.hdf5", *foreign_flag])
    assert exc.value.code == 2


def check_unknown_key_is_refused(arch: str, key: str, close: str) -> None:
    entry = lookup(arch)
    with pytest.raises(ConfigKeyError, match=rf"`model.hyperparameters.{key}`.*{close}"):
        entry.config_from_dict({key: 1})
    from para_training.configs import Preset

    with pytest.raises(ConfigKeyError, match=rf"`preset 'p'.model.{key}` \(did you mean {close}"):
        Preset(name="p", architecture=arch, model={key: 1}).check_model()


def check_trained(run_dir, history) -> None:
    losses = [h["train_loss"] for h in history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    last = history[-1]
    # validated through the deployment decode (voxel_volume head): finite world errors
    assert np.isfinite(last["val_3d_mm"]) and np.isfinite(last["val_pix"])
    assert (run_dir / "best" / "model.safetensors").is_file()
    assert sorted((run_dir / "vis").glob("epoch_*.png"))  # the heatmap figure


def check_parity(path, folder) -> dict:
    """The ONNX graph at `path` against the checkpoint `folder`: argmax agreement 1.0, float
    relative errors < 1e-4; returns the parity report."""
    rep = parity(path, folder)
    for k, v in rep.items():
        if k.endswith("_agreement"):
            assert v == 1.0, (k, rep)
        else:
            assert v < 1e-4, (k, rep)
    return rep


def check_exports_and_runs(
    run_dir, tmp_path, episodes, arch: str, extras: tuple[str, ...] = ()
) -> dict:
    """Export, parity (argmax agreement 1.0, float relative error < 1e-4), and OnnxPolicy on
    real frames decoding to finite world targets near the workspace; returns the parity."""
    path = tmp_path / f"{arch}.onnx"
    spec = export_onnx(run_dir / "best", path)
    assert spec.model.architecture == arch and spec.model.head == "voxel_volume"
    assert [t.name for t in spec.model.inputs] == [*VOXEL_INPUTS, *extras]
    assert tuple(e.name for e in spec.model.extra_inputs) == extras  # the contract says them
    rep = check_parity(path, run_dir / "best")
    policy = OnnxPolicy(str(path), providers=["CPUExecutionProvider"])
    assert policy.has_start_keypoint
    T = spec.window.steps
    ep = episodes[-1]
    for f in (0, 5, 20):
        obs = Observation(np.asarray(ep.rgb[f]), ep.K_at(f), ep.T_world_cam_at(f), ep.eef_pos[f])
        res = policy.infer(obs, with_heatmap=True)
        ch = res.chunk
        assert ch.positions.shape == (T, 3) and ch.valid.all(), ch.reasons
        assert np.isfinite(ch.positions).all() and ch.quat_xyzw.shape == (T, 4)
        assert ch.gripper.shape == (T,) and np.isfinite(ch.gripper).all()
        assert ((ch.confidence > 0) & (ch.confidence <= 1)).all()
        lo, hi = ep.eef_pos.min(0) - 0.5, ep.eef_pos.max(0) + 0.5
        assert ((ch.positions > lo) & (ch.positions < hi)).all(), ch.positions
        assert res.heatmap.shape == (T, spec.grid.height, spec.grid.width)
    return rep


def check_gripper_input(preset: str, episodes, tmp_path) -> None:
    """With `gripper_input` the start keypoint is 4 wide in the graph, and OnnxPolicy feeds the
    gripper command (an untrained model: the interface, not the quality)."""
    from para_training import checkpoint as ckpt

    p = get_preset(preset)
    data = DataConfig(data=["synthetic"], **p["data"])
    hp = {**p["model"], "gripper_input": True}
    spec, _cfg = make_spec(episodes[:4], data, hp, lambda *_: None, p.architecture)
    assert spec.uses_gripper_state
    torch.manual_seed(0)
    folder = ckpt.save_checkpoint(tmp_path / "ck", ckpt.build_model(spec), spec)
    path = tmp_path / "grip.onnx"
    spec = export_onnx(folder, path)
    assert spec.model.inputs[1].shape == ("batch", 4)
    rep = parity(path, folder)
    assert all(v == 1.0 for k, v in rep.items() if k.endswith("_agreement")), rep
    assert all(v < 1e-4 for k, v in rep.items() if k.endswith("_rel_err")), rep
    policy = OnnxPolicy(str(path), providers=["CPUExecutionProvider"])
    ep = episodes[0]
    f = 10
    obs = Observation(
        np.asarray(ep.rgb[f]), ep.K_at(f), ep.T_world_cam_at(f), ep.eef_pos[f], ep.gripper[f - 1]
    )
    res = policy.infer(obs)
    assert res.start_keypoint.shape == (4,) and res.start_keypoint[3] == np.float32(ep.gripper[9])
    assert res.chunk.positions.shape == (spec.window.steps, 3)


class EndToEnd:
    """The end-to-end tests every voxel_volume variant with the plain graph inputs (image,
    start_keypoint) runs: a test module subclasses it as `TestEndToEnd`, naming its PRESET,
    ARCH, FOREIGN_FLAG (another architecture's flag, refused) and MISSPELT (an unknown key and
    the close field name the refusal must suggest)."""

    PRESET: str
    ARCH: str
    FOREIGN_FLAG: tuple[str, ...]
    MISSPELT: tuple[str, str]

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory, episodes):
        return train_run(tmp_path_factory.mktemp(cls.ARCH), episodes, cls.PRESET)

    def test_builds_from_its_name_with_the_voxel_volume_outputs(self, episodes):
        check_builds_from_its_name(self.PRESET, episodes)

    def test_para_train_flags_are_its_config_fields(self, capsys):
        check_flags_are_its_config_fields(self.ARCH, self.FOREIGN_FLAG, capsys)

    def test_an_unknown_config_key_is_refused_with_the_close_names(self):
        check_unknown_key_is_refused(self.ARCH, *self.MISSPELT)

    def test_trains_with_the_same_pipeline_and_the_loss_decreases(self, run):
        check_trained(*run)

    def test_exports_with_parity_and_runs_in_the_runtime(self, run, tmp_path, episodes):
        rep = check_exports_and_runs(run[0], tmp_path, episodes, self.ARCH)
        print(f"{self.ARCH} parity: {rep}")

    def test_the_gripper_state_input_reaches_the_graph(self, episodes, tmp_path):
        check_gripper_input(self.PRESET, episodes, tmp_path)
