"""The seed's voxel-token policies (`voxel_abs`, `voxel_rel`) end to end, through the registry:
built by name with the runtime inputs camera_K / T_world_cam / eef_pos, their own `para-train`
flags, unknown keys refused, the in-graph lift equal to the runtime's (para_ros.core.geometry),
the invariance each encoding has, the training batch's camera reaching the model, trains with
the same data pipeline, exports with parity and runs in OnnxPolicy, which feeds the extra
inputs from the observation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from para_ros.core import geometry
from para_ros.core.onnx_metadata import read_spec
from para_ros.runtime.onnx_policy import OnnxPolicy
from tests.training import voxel_variants as vv

PRESETS = {"voxel_abs": "tiny_voxel_abs", "voxel_rel": "tiny_voxel_rel"}
EXTRAS = ("camera_K", "T_world_cam", "eef_pos")


@pytest.fixture(scope="module", params=sorted(PRESETS))
def run(request, tmp_path_factory, episodes):
    arch = request.param
    run_dir, history = vv.train_run(tmp_path_factory.mktemp(arch), episodes, PRESETS[arch])
    return arch, run_dir, history


@pytest.mark.parametrize("arch", sorted(PRESETS))
def test_builds_from_its_name_with_the_runtime_inputs(arch, episodes):
    vv.check_builds_from_its_name(PRESETS[arch], episodes, EXTRAS)


@pytest.mark.parametrize("arch", sorted(PRESETS))
def test_para_train_flags_are_its_config_fields(arch, capsys):
    vv.check_flags_are_its_config_fields(arch, ["--ar_layers", "2"], capsys)
    # the workspace box comes from the data: no flag for it
    ns = vv.build_parser(arch).parse_args(["d.hdf5", "--xyz_freqs", "3"])
    assert ns.xyz_freqs == 3 and not hasattr(ns, "workspace_min")


def test_an_unknown_config_key_is_refused_with_the_close_names():
    vv.check_unknown_key_is_refused("voxel_abs", "xyz_freq", "xyz_freqs")
    vv.check_unknown_key_is_refused("voxel_rel", "voxel_layer", "voxel_layers")


def test_the_workspace_box_is_the_eefs_range_and_the_height_bins(episodes):
    spec, cfg, _ = vv.built("tiny_voxel_abs", episodes)
    pos = np.concatenate([e.eef_pos for e in episodes[:4]])  # make_spec's episodes
    np.testing.assert_allclose(cfg.workspace_min[:2], pos.min(0)[:2])
    np.testing.assert_allclose(cfg.workspace_max[:2], pos.max(0)[:2])
    assert (cfg.workspace_min[2], cfg.workspace_max[2]) == (spec.height.min, spec.height.max)
    assert tuple(spec.model.hyperparameters["workspace_max"]) == cfg.workspace_max


def _tilted_camera(spec) -> tuple[np.ndarray, np.ndarray]:
    """A camera 0.3 m above the top height bin looking 10 deg below the horizon: the top rows
    of the image look above the horizon (no plane ahead), the low height bins lie ahead."""
    H, W = spec.image.height, spec.image.width
    f = (H / 2) / np.tan(np.radians(45) / 2)
    K = geometry.intrinsics(f, f * 1.1, W / 2 + 1.5, H / 2 - 2.0)
    pitch = np.radians(10)
    z = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])  # optical axis: +x, slightly down
    x = np.array([0.0, -1.0, 0.0])
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = [-0.4, 0.05, spec.height.max + 0.3]
    return K, T


def test_the_in_graph_lift_is_the_runtimes_lift_of_every_voxel(episodes):
    """Every voxel's world point (and whether it has one) is what para_ros.core.geometry
    decodes for it: the cell centre lifted to the height-bin centre (DESIGN §4)."""
    spec, _cfg, model = vv.built("tiny_voxel_abs", episodes)
    Z, Hg, Wg = spec.height.n_bins, spec.grid.height, spec.grid.width
    hw, ghw = (spec.image.height, spec.image.width), (Hg, Wg)
    feeds = model.example_inputs(spec, 1)
    cams = [(feeds["camera_K"][0].double().numpy(), feeds["T_world_cam"][0].double().numpy())]
    cams.append(_tilted_camera(spec))
    zz, ii, jj = np.meshgrid(np.arange(Z), np.arange(Hg), np.arange(Wg), indexing="ij")
    uv = geometry.cell_center(ii, jj, hw, ghw)  # (Z, Hg, Wg, 2)
    span = spec.height.max - spec.height.min
    h = spec.height.min + (zz + 0.5) * span / Z  # (Z, Hg, Wg)
    n_invalid = []
    for K, T in cams:
        want = geometry.lift(uv, h, K, T)
        with torch.no_grad():
            pts, valid = model.voxel_points(
                torch.from_numpy(K).float()[None], torch.from_numpy(T).float()[None]
            )
        np.testing.assert_array_equal(valid[0].numpy(), want.valid)
        got = pts[0].numpy()[want.valid]
        np.testing.assert_allclose(got, want.points[want.valid], rtol=2e-5, atol=1e-5)
        n_invalid.append(int((~want.valid).sum()))
    assert n_invalid[0] == 0 and 0 < n_invalid[1] < Z * Hg * Wg  # both cases exercised


def _logits(model, feeds) -> torch.Tensor:
    names = ("image", "start_keypoint", *EXTRAS)
    with torch.no_grad():
        return model(*(feeds[n] for n in names))["volume_logits"]  # (B, T, Z, Hg, Wg)


def _moved(feeds: dict, camera: tuple, eef: tuple) -> dict:
    """The same image and start keypoint, the camera and the EEF translated in the world."""
    out = dict(feeds)
    out["T_world_cam"] = feeds["T_world_cam"].clone()
    out["T_world_cam"][:, :3, 3] += torch.tensor(camera)
    out["eef_pos"] = feeds["eef_pos"] + torch.tensor(eef)
    return out


def test_voxel_rel_is_invariant_to_moving_camera_and_eef_together_sideways(episodes):
    """voxel_rel sees world positions only relative to the EEF: translating the camera and the
    EEF by the same horizontal offset (the image and the start keypoint stay the same) changes
    no logit. The camera alone, or a vertical offset (the height bins are world heights),
    does. voxel_abs's logits follow the world position of the camera."""
    spec, _cfg, rel = vv.built("tiny_voxel_rel", episodes)
    _, _, absolute = vv.built("tiny_voxel_abs", episodes)
    feeds = rel.example_inputs(spec, 2, seed=3)
    side = (0.07, -0.05, 0.0)
    ref = _logits(rel, feeds)
    torch.testing.assert_close(_logits(rel, _moved(feeds, side, side)), ref, rtol=0, atol=1e-5)
    for camera, eef in (((0.05, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0, 0, 0.03), (0, 0, 0.03))):
        assert (_logits(rel, _moved(feeds, camera, eef)) - ref).abs().max() > 1e-2
    ref_abs = _logits(absolute, feeds)
    moved_abs = _logits(absolute, _moved(feeds, side, side))
    assert (moved_abs - ref_abs).abs().max() > 1e-2
    # ... and voxel_abs with the camera moved alone
    assert (_logits(absolute, _moved(feeds, side, (0, 0, 0))) - ref_abs).abs().max() > 1e-2


@pytest.mark.parametrize("arch", sorted(PRESETS))
def test_the_summed_token_logits_are_the_dot_products_with_each_voxel_token(arch, episodes):
    """voxel_layers = 0 (the libero128 presets): the graph folds the encoder's last layer into
    the key and never builds the tokens; its logits are <key, F(y, x) + E(z, y, x)> of the
    tokens built explicitly, E the learned `no_point` where the ray misses the plane (the
    tilted camera has both)."""
    from para_training.configs import DataConfig, get_preset
    from para_training.policies.registry import lookup
    from para_training.train import make_spec

    p = get_preset(PRESETS[arch])
    data = DataConfig(data=["synthetic"], **p["data"])
    hp = {**p["model"], "voxel_layers": 0}
    spec, cfg = make_spec(episodes[:4], data, hp, lambda *_: None, arch)
    torch.manual_seed(0)
    model = lookup(arch).build(cfg).eval()
    with torch.no_grad():  # non-zero no_point and biases: every term counts
        model.no_point.normal_()
        model.pos_mlp[-1].bias.normal_()
    feeds = model.example_inputs(spec, 2, seed=5)
    K, T = _tilted_camera(spec)
    feeds["camera_K"][1] = torch.from_numpy(K).float()
    feeds["T_world_cam"][1] = torch.from_numpy(T).float()
    got = _logits(model, feeds)  # (B, T, Z, Hg, Wg)
    with torch.no_grad():  # the explicit tokens, step by step as the docstring draws them
        patches = model.patch_tokens(feeds["image"])
        feat = model.mark_start_cell(model.cell_features(patches), feeds["start_keypoint"])
        points, valid = model.voxel_points(feeds["camera_K"], feeds["T_world_cam"])
        eef = feeds["eef_pos"]
        origin = model.origin(eef)
        n = (points - origin[:, None, None, None]) / model.ws_half
        E = torch.where(valid[..., None], model.encode_xyz(n), model.no_point)  # (B,Z,Hg,Wg,Df)
        tokens = feat.permute(0, 2, 3, 1)[:, None] + E  # (B, Z, Hg, Wg, Df)
        mem, start_tok = model.memory_tokens(patches, feeds["start_keypoint"])
        eef_tok = model.eef_proj(model.encode_xyz((eef - origin) / model.ws_half))[:, None]
        memory = torch.cat([mem, start_tok, eef_tok + model.eef_token_emb], dim=1)
        queries = (model.step_query + model.t_sin[None]).expand(2, -1, -1)
        keys = model.key_out(model.out_norm(model.decoder(queries, memory)))  # (B, T, Df)
        want = torch.einsum("btd,bzyxd->btzyx", keys, tokens) * model.key_scale()
    assert (~valid[1]).any() and valid[1].any() and valid[0].all()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_training_feeds_the_batchs_camera_and_eef(episodes):
    """The model's inputs from a dataset batch are its graph inputs: K, the camera pose (the
    augmented one, with which the labels were projected) and the EEF of each sample."""
    from para_training.configs import TrainConfig
    from para_training.data.augment import AugmentConfig
    from para_training.data.dataset import ParaWindowDataset, sample_index

    spec, _cfg, model = vv.built("tiny_voxel_rel", episodes)
    aug = AugmentConfig(rotation_deg=10.0, rotation_prob=1.0)
    torch.manual_seed(0)
    ds = ParaWindowDataset(episodes[:2], spec, sample_index(episodes[:2], [0, 1]), aug)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    inputs = model.batch_inputs(batch, spec)
    assert len(inputs) == 5 and all(t.dtype != torch.float64 for t in inputs)
    for t, key in zip(inputs[2:], ("K", "T_world_cam", "eef_pos"), strict=True):
        torch.testing.assert_close(t, batch[key].float())
    T0 = torch.from_numpy(episodes[0].T_world_cam_at(0)).float()
    assert not torch.allclose(inputs[3][0], T0)  # the rotated camera, not the recorded one
    with torch.no_grad():
        out = model(*inputs)
    loss = model.compute_loss(out, batch, spec, TrainConfig())
    assert torch.isfinite(loss["loss"]) and set(loss) == {"loss", "v", "g", "r"}


def test_trains_with_the_same_pipeline_and_the_loss_decreases(run):
    _arch, run_dir, history = run
    vv.check_trained(run_dir, history)


def test_exports_with_parity_and_runs_in_the_runtime(run, tmp_path, episodes):
    arch, run_dir, _ = run
    rep = vv.check_exports_and_runs(run_dir, tmp_path, episodes, arch, EXTRAS)
    print(f"{arch} parity: {rep}")
    spec = read_spec(tmp_path / f"{arch}.onnx")  # the contract inside the file declares them
    assert [(e.name, tuple(e.shape)) for e in spec.model.extra_inputs] == [
        ("camera_K", (3, 3)),
        ("T_world_cam", (4, 4)),
        ("eef_pos", (3,)),
    ]
    # the node's warm-up feeds zeros for the extra inputs (K = 0: no voxel has a point)
    policy = OnnxPolicy(str(tmp_path / f"{arch}.onnx"), providers=["CPUExecutionProvider"])
    assert np.isfinite(policy.warmup(1))


def test_the_gripper_state_input_reaches_the_graph(episodes, tmp_path):
    vv.check_gripper_input("tiny_voxel_rel", episodes, tmp_path)


def test_the_summed_token_graph_exports_with_parity(episodes, tmp_path):
    """voxel_layers = 0 through para-export: argmax agreement 1.0 and float relative errors
    < 1e-4 between ONNX Runtime and PyTorch (an untrained model: the folded graph, not its
    quality; voxel_rel, whose origin is the eef_pos input; voxel_abs shares every other line)."""
    arch = "voxel_rel"
    from para_training import checkpoint as ckpt
    from para_training.configs import DataConfig, get_preset
    from para_training.export import export_onnx
    from para_training.train import make_spec

    p = get_preset(PRESETS[arch])
    data = DataConfig(data=["synthetic"], **p["data"])
    hp = {**p["model"], "voxel_layers": 0}
    spec, _cfg = make_spec(episodes[:4], data, hp, lambda *_: None, arch)
    torch.manual_seed(0)
    folder = ckpt.save_checkpoint(tmp_path / "ck", ckpt.build_model(spec), spec)
    export_onnx(folder, tmp_path / "m.onnx")
    assert read_spec(tmp_path / "m.onnx").model.hyperparameters["voxel_layers"] == 0
    vv.check_parity(tmp_path / "m.onnx", folder)
