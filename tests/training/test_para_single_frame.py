"""The single-frame PARA baseline (`para_single_frame`) end to end, through the registry:
built by name, its own `para-train` flags, unknown keys refused, trains with the same data
pipeline, exports to ONNX with parity and runs in OnnxPolicy (voxel_volume head)."""

from __future__ import annotations

import pytest
import torch

from tests.training import voxel_variants as vv

PRESET = "tiny_single_frame"
ARCH = "para_single_frame"


@pytest.fixture(scope="module")
def run(tmp_path_factory, episodes):
    return vv.train_run(tmp_path_factory.mktemp("single_frame"), episodes, PRESET)


def test_builds_from_its_name_with_the_voxel_volume_outputs(episodes):
    vv.check_builds_from_its_name(PRESET, episodes)


def test_para_train_flags_are_its_config_fields(capsys):
    vv.check_flags_are_its_config_fields(ARCH, ["--tf_layers", "5"], capsys)


def test_an_unknown_config_key_is_refused_with_the_close_names():
    vv.check_unknown_key_is_refused(ARCH, "height_loss_weigth", "height_loss_weight")


def test_gripper_rotation_and_height_are_read_at_the_predicted_cell(episodes):
    spec, _cfg, model = vv.built(PRESET, episodes)
    feeds = model.example_inputs(spec, 3, seed=2)
    with torch.no_grad():
        out = model(feeds["image"], feeds["start_keypoint"])
        pred = model.predict(out, spec)
    Wg = spec.grid.width
    for b in range(3):
        for t in range(spec.window.steps):
            z, y, x = pred["voxel"][b, t].tolist()
            assert y * Wg + x == int(out["heatmap_logits"][b, t].argmax())
            torch.testing.assert_close(
                pred["gripper_logits"][b, t], out["gripper_map"][b, t, :, y, x]
            )
            torch.testing.assert_close(
                pred["rotation_logits"][b, t], out["rotation_map"][b, t, :, y, x]
            )
            assert z == int(out["height_logits"][b, t, :, y, x].argmax())


def test_the_start_keypoint_conditions_the_heatmap(episodes):
    spec, _cfg, model = vv.built(PRESET, episodes)
    feeds = model.example_inputs(spec, 1, seed=3)
    moved = feeds["start_keypoint"].clone()
    moved[:, :2] = torch.tensor([[5.0, 5.0]]) if moved[0, 0] > 32 else torch.tensor([[60.0, 60.0]])
    with torch.no_grad():
        a = model(feeds["image"], feeds["start_keypoint"])["heatmap_logits"]
        b = model(feeds["image"], moved)["heatmap_logits"]
    assert not torch.allclose(a, b)


def test_trains_with_the_same_pipeline_and_the_loss_decreases(run):
    vv.check_trained(*run)


def test_exports_with_parity_and_runs_in_the_runtime(run, tmp_path, episodes):
    rep = vv.check_exports_and_runs(run[0], tmp_path, episodes, ARCH)
    print(f"{ARCH} parity: {rep}")


def test_the_gripper_state_input_reaches_the_graph(episodes, tmp_path):
    vv.check_gripper_input(PRESET, episodes, tmp_path)
