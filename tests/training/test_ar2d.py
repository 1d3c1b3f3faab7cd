"""The seed's 2D autoregressive policy (`ar2d`) end to end, through the registry: built by
name, its own `para-train` flags, unknown keys refused, lookahead-K targets as the window
stride, teacher forcing and greedy decoding computing the same function, trains with the same
data pipeline, exports (the greedy loop unrolled) with parity and runs in OnnxPolicy."""

from __future__ import annotations

import pytest
import torch

from tests.training import voxel_variants as vv

PRESET = "tiny_ar2d"
ARCH = "ar2d"


@pytest.fixture(scope="module")
def run(tmp_path_factory, episodes):
    return vv.train_run(tmp_path_factory.mktemp("ar2d"), episodes, PRESET)


def test_builds_from_its_name_with_the_voxel_volume_outputs(episodes):
    vv.check_builds_from_its_name(PRESET, episodes)


def test_para_train_flags_are_its_config_fields(capsys):
    vv.check_flags_are_its_config_fields(ARCH, ["--pooling", "mean"], capsys)
    # the lookahead is the data's stride: no second flag for it
    assert not hasattr(vv.build_parser(ARCH).parse_args(["d.hdf5"]), "lookahead")


def test_an_unknown_config_key_is_refused_with_the_close_names():
    vv.check_unknown_key_is_refused(ARCH, "ar_layer", "ar_layers")


def test_the_lookahead_is_the_window_stride(episodes):
    for stride in (1, 5):
        spec, cfg, _ = vv.built(PRESET, episodes, stride=stride)
        assert cfg.lookahead == spec.window.stride == stride
        assert spec.model.hyperparameters["lookahead"] == stride


def test_teacher_forcing_and_greedy_decoding_are_the_same_function(episodes):
    """Fed its own greedy voxels as the teacher, the parallel teacher-forced pass gives the
    greedy logits: what training teaches is what the unrolled graph runs."""
    spec, _cfg, model = vv.built(PRESET, episodes)
    feeds = model.example_inputs(spec, 3, seed=4)
    with torch.no_grad():
        greedy = model(feeds["image"], feeds["start_keypoint"])
        voxel = model.predict(greedy, spec)["voxel"]  # (B, T, 3) the voxels fed forward
        forced = model(feeds["image"], feeds["start_keypoint"], voxel)
    for k, v in greedy.items():
        torch.testing.assert_close(forced[k], v, rtol=1e-5, atol=1e-5)


def test_each_step_depends_on_the_previous_steps_voxel_only(episodes):
    spec, _cfg, model = vv.built(PRESET, episodes)
    feeds = model.example_inputs(spec, 2, seed=5)
    T, Hg, Wg = spec.window.steps, spec.grid.height, spec.grid.width
    teacher = torch.stack(
        [torch.zeros(2, T), torch.full((2, T), Hg // 2), torch.full((2, T), Wg // 2)], -1
    ).long()  # (B, T, 3)
    moved = teacher.clone()
    moved[:, 1, 1:] = torch.tensor([1, 2])  # another cell for step 1
    with torch.no_grad():
        a = model(feeds["image"], feeds["start_keypoint"], teacher)["heatmap_logits"]
        b = model(feeds["image"], feeds["start_keypoint"], moved)["heatmap_logits"]
    changed = [not torch.allclose(a[:, t], b[:, t]) for t in range(T)]
    assert changed == [t == 2 for t in range(T)]  # only step 2 sees step 1's voxel


def test_training_feeds_the_targets_and_evaluation_decodes_greedily(episodes):
    spec, _cfg, model = vv.built(PRESET, episodes)
    feeds = model.example_inputs(spec, 2)
    batch = {"image": feeds["image"], "start": feeds["start_keypoint"]}
    batch["voxel"] = torch.zeros(2, spec.window.steps, 3, dtype=torch.long)
    assert len(model.batch_inputs(batch, spec)) == 2  # eval: the graph's inputs only
    model.train()
    assert torch.equal(model.batch_inputs(batch, spec)[-1], batch["voxel"])


def test_trains_with_the_same_pipeline_and_the_loss_decreases(run):
    vv.check_trained(*run)


def test_exports_with_parity_and_runs_in_the_runtime(run, tmp_path, episodes):
    rep = vv.check_exports_and_runs(run[0], tmp_path, episodes, ARCH)
    print(f"{ARCH} parity: {rep}")


def test_the_gripper_state_input_reaches_the_graph(episodes, tmp_path):
    vv.check_gripper_input(PRESET, episodes, tmp_path)
