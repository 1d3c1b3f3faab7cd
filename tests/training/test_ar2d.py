"""The seed's 2D autoregressive policy (`ar2d`) end to end, through the registry: built by
name, its own `para-train` flags, unknown keys refused, lookahead-K targets as the window
stride, teacher forcing and greedy decoding computing the same function, trains with the same
data pipeline, exports (the greedy loop unrolled) with parity and runs in OnnxPolicy."""

from __future__ import annotations

import torch

from tests.training import voxel_variants as vv

PRESET = "tiny_ar2d"
ARCH = "ar2d"


class TestEndToEnd(vv.EndToEnd):
    PRESET = PRESET
    ARCH = ARCH
    FOREIGN_FLAG = ("--pooling", "mean")
    MISSPELT = ("ar_layer", "ar_layers")

    def test_para_train_flags_are_its_config_fields(self, capsys):
        super().test_para_train_flags_are_its_config_fields(capsys)
        # the lookahead is the data's stride: no second flag for it
        assert not hasattr(vv.build_parser(ARCH).parse_args(["d.hdf5"]), "lookahead")


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
