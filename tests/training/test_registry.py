"""The model registry is what training, export and checkpoints use: lookup by name with close
names, `para-train --architecture` with that model's own flags, presets and configs that
refuse unknown keys, and no architecture named outside the registry and its folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from para_ros.core.contract import HEAD_FAMILIES, ModelSpec
from para_training import checkpoint as ckpt
from para_training.cli import dataclass_from_args
from para_training.configs import ConfigKeyError, DataConfig, Preset, get_preset
from para_training.policies.registry import DEFAULT_ARCHITECTURE, lookup, names
from para_training.train import build_parser, main, make_spec, resolve_architecture

REPO = Path(__file__).resolve().parents[2]


def test_registry_entries_carry_config_model_loss_predict_io_and_head():
    assert {
        "para_dino_kv",
        "coord_regression",
        "para_single_frame",
        "ar2d",
        "voxel_abs",
        "voxel_rel",
    } <= set(names())
    for name in names():
        e = lookup(name)
        assert e.name == name and e.head in HEAD_FAMILIES
        for attr in ("compute_loss", "predict", "export_io", "example_inputs"):
            assert callable(getattr(e, attr)), (name, attr)
        assert e.size_fields and e.model_cls.architecture == name
    assert lookup("para_dino_kv").head == "voxel_volume"
    assert lookup("coord_regression").head == "world_regression"
    # the seed's variants decode like PARA: the node runs them unchanged
    assert lookup("para_single_frame").head == "voxel_volume"
    assert lookup("ar2d").head == "voxel_volume"
    assert lookup("voxel_abs").head == lookup("voxel_rel").head == "voxel_volume"
    assert ModelSpec().architecture == DEFAULT_ARCHITECTURE


def test_a_wrong_architecture_name_gets_close_names_and_every_known_one(capsys):
    with pytest.raises(KeyError, match=r"'coord_regresion'.*\['coord_regression'\].*Known"):
        lookup("coord_regresion")
    assert main(["data", "--architecture", "coord_regresion"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean ['coord_regression']" in err and "para_dino_kv" in err


def test_architecture_flag_exposes_that_models_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--architecture", "coord_regression", "-h"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--pooling" in help_text and "--position_loss_weight" in help_text
    assert "--tf_layers" not in help_text and "--d_feat" not in help_text
    args = build_parser("coord_regression").parse_args(["d.hdf5", "--pooling", "mean"])
    assert args.pooling == "mean" and not hasattr(args, "position_mean")  # data-derived
    # a flag of another architecture is refused
    with pytest.raises(SystemExit) as exc:
        build_parser("coord_regression").parse_args(["d.hdf5", "--tf_layers", "5"])
    assert exc.value.code == 2
    assert build_parser().parse_args(["d.hdf5", "--tf_layers", "5"]).tf_layers == 5


def test_the_preset_picks_the_architecture_and_a_mismatch_is_refused():
    assert resolve_architecture(None, "tiny_coord") == "coord_regression"
    assert resolve_architecture(None, "tiny_single_frame") == "para_single_frame"
    assert resolve_architecture(None, "tiny_ar2d") == "ar2d"
    assert resolve_architecture(None, "tiny_voxel_abs") == "voxel_abs"
    assert resolve_architecture(None, "tiny_voxel_rel") == "voxel_rel"
    assert resolve_architecture(None, "tiny") == DEFAULT_ARCHITECTURE
    assert resolve_architecture(None, "") == DEFAULT_ARCHITECTURE
    fits = r"\['libero128_coord', 'tiny_coord'\]"  # the presets for coord_regression
    with pytest.raises(ValueError, match=rf"preset 'tiny' is for.*{fits}"):
        resolve_architecture("coord_regression", "tiny")


def test_unknown_preset_keys_are_refused_with_close_names():
    with pytest.raises(ConfigKeyError, match=r"`preset 'p'.data.grid_heigth` \(did you mean "):
        Preset(name="p", data={"grid_heigth": 8})
    with pytest.raises(ConfigKeyError, match=r"`preset 'p'.train.epoch` \(did you mean epochs"):
        Preset(name="p", train={"epoch": 3})
    with pytest.raises(ConfigKeyError, match=r"`preset 'p'.model.d_modle` \(did you mean d_model"):
        Preset(name="p", model={"d_modle": 64}).check_model()
    with pytest.raises(ConfigKeyError, match=r"`preset 'p'.model.d_feat`"):
        Preset(name="p", architecture="coord_regression", model={"d_feat": 8}).check_model()
    with pytest.raises(ValueError, match=r"come from the data"):
        Preset(name="p", model={"height_bins": 8}).check_model()
    from para_training.configs import _preset

    with pytest.raises(ConfigKeyError, match=r"`preset 'p'.modle` \(did you mean model"):
        _preset("p", {"modle": {}})
    # every shipped preset is valid for its architecture; presets read like dicts
    from para_training.configs import PRESETS

    for name in PRESETS:
        get_preset(name)
    p = get_preset("tiny")
    assert p["data"]["grid_height"] == 16 and p.architecture == DEFAULT_ARCHITECTURE


def test_unknown_config_keys_are_refused_with_close_names():
    ns = build_parser().parse_args(["d.hdf5"])
    with pytest.raises(ConfigKeyError, match=r"`preset.grid_heigth` \(did you mean grid_height"):
        dataclass_from_args(DataConfig, ns, {"grid_heigth": 8})
    entry = lookup("coord_regression")
    with pytest.raises(ConfigKeyError, match=r"`model.hyperparameters.poling`.*pooling"):
        entry.config_from_dict({"poling": "cls"})


def test_checkpoint_config_json_with_unknown_keys_is_refused(tmp_path, episodes):
    from para_training.configs import get_preset as gp

    p = gp("tiny")
    data = DataConfig(data=["synthetic"], **p["data"])
    spec, _cfg = make_spec(episodes[:2], data, p["model"], log=lambda *_: None)
    assert spec.model.head == "voxel_volume"
    folder = ckpt.save_checkpoint(tmp_path / "ck", ckpt.build_model(spec), spec)
    ckpt.load_model(folder)  # the untouched checkpoint loads
    cfg_file = folder / ckpt.CONFIG_FILE
    d = json.loads(cfg_file.read_text())
    d["model"]["hyperparameters"]["grid_heigth"] = d["model"]["hyperparameters"].pop("grid_height")
    cfg_file.write_text(json.dumps(d))
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"config\.json.*`model\.hyperparameters\.grid_heigth` \(did you mean grid_height",
    ):
        ckpt.load_model(folder)
    d["model"]["hyperparameters"]["grid_height"] = d["model"]["hyperparameters"].pop("grid_heigth")
    d["model"]["architecture"] = "para_dino"
    cfg_file.write_text(json.dumps(d))
    with pytest.raises(ckpt.CheckpointError, match=r"`model.architecture`.*para_dino_kv"):
        ckpt.load_model(folder)


def test_no_architecture_is_named_outside_the_registry_and_its_folders():
    """Code dispatches through the registry: the names appear only in the registry, the
    policies' own folders, and as the contract's documented default (data)."""
    allowed = {
        REPO / "para_training" / "policies" / "registry.py",
        REPO / "para_training" / "configs.py",  # presets name their architecture (data)
        REPO / "para_ros" / "core" / "contract.py",  # ModelSpec's default (older files)
    }
    pattern = re.compile(
        r"para_dino_kv|ParaDinoKV|coord_regression|CoordRegression|para_single_frame"
        r"|ParaSingleFrame|\bar2d\b|Ar2d|voxel_abs|voxel_rel|VoxelAbs|VoxelRel|voxel_token"
        r"|VoxelToken"
    )
    offenders = []
    for root in ("para_training", "para_ros"):
        for f in (REPO / root).rglob("*.py"):
            if f in allowed or "policies" in f.relative_to(REPO).parts[1:2]:
                continue
            for k, line in enumerate(f.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{f.relative_to(REPO)}:{k}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
