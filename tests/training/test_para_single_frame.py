"""The single-frame PARA baseline (`para_single_frame`) end to end, through the registry:
built by name, its own `para-train` flags, unknown keys refused, trains with the same data
pipeline, exports to ONNX with parity and runs in OnnxPolicy (voxel_volume head)."""

from __future__ import annotations

import torch

from tests.training import voxel_variants as vv

PRESET = "tiny_single_frame"


class TestEndToEnd(vv.EndToEnd):
    PRESET = PRESET
    ARCH = "para_single_frame"
    FOREIGN_FLAG = ("--tf_layers", "5")
    MISSPELT = ("height_loss_weigth", "height_loss_weight")


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
