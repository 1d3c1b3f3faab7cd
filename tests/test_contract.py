"""PolicySpec: JSON round trip and validation messages that name the key and the expectation."""

from __future__ import annotations

import json

import pytest

from para_ros.core.contract import PolicySpec, RotationSpec, SpecError


def _spec_dict() -> dict:
    return PolicySpec(rotation=RotationSpec(n_bins=48)).to_dict()


def test_round_trip_is_identity():
    spec = PolicySpec()
    assert PolicySpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["spec_version"] == 2


def test_unknown_version_is_refused():
    d = _spec_dict()
    d["spec_version"] = 99
    with pytest.raises(SpecError, match=r"`spec_version`: unknown version 99.*reads \[1, 2\]"):
        PolicySpec.from_dict(d)


def test_missing_version_is_refused():
    d = _spec_dict()
    del d["spec_version"]
    with pytest.raises(SpecError, match=r"`spec_version`: missing key"):
        PolicySpec.from_dict(d)


def test_missing_nested_key_names_its_path():
    d = _spec_dict()
    del d["rotation"]["pca_axis"]
    with pytest.raises(SpecError, match=r"`rotation\.pca_axis`: missing key \(expected list\)"):
        PolicySpec.from_dict(d)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("window", "steps"), "6", r"`window\.steps`: expected an integer, got str '6'"),
        (("height", "min"), "low", r"`height\.min`: expected a number, got str 'low'"),
        (("rotation", "mode"), "quat", r"`rotation\.mode`: expected one of 'pca1d' \| 'euler'"),
        (("image", "height"), 2.5, r"`image\.height`: expected an integer, got float"),
        (("camera",), [], r"`camera`: expected an object, got list"),
    ],
)
def test_wrong_type_names_key_and_expectation(path, value, expected):
    d = _spec_dict()
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SpecError, match=expected):
        PolicySpec.from_dict(d)


def test_unknown_key_is_refused():
    d = _spec_dict()
    d["grid"]["depth"] = 3
    with pytest.raises(SpecError, match=r"`grid`: unknown key\(s\) \['depth'\]"):
        PolicySpec.from_dict(d)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("height", "max"), -5.0, r"`height`: needs finite min < max"),
        (("rotation", "pca_axis"), [1.0, 1.0, 0.0], r"`rotation\.pca_axis`: must be a unit"),
        (("gripper", "closed_sign"), 0, r"`gripper\.closed_sign`: must be \+1 or -1"),
        (("window", "dt"), 0.0, r"`window\.dt`: must be a finite number of seconds > 0"),
    ],
)
def test_bad_values_are_refused(path, value, expected):
    d = _spec_dict()
    d[path[0]][path[1]] = value
    with pytest.raises(SpecError, match=expected):
        PolicySpec.from_dict(d)


def test_not_json():
    with pytest.raises(SpecError, match="not valid JSON"):
        PolicySpec.from_json("{oops")


def test_rotation_head_width_follows_mode():
    assert RotationSpec(mode="pca1d", n_bins=48).n_classes == 48
    assert RotationSpec(mode="euler", n_bins=32).n_classes == 96
    assert RotationSpec(mode="kmeans", centroids=((0.0, 0.0, 0.0),) * 5).n_classes == 5


def test_version_1_loads_with_the_default_executor_and_says_so_once(caplog):
    import para_ros.core.contract as contract

    d = _spec_dict()
    del d["executor"]
    d["spec_version"] = 1
    contract._said_v1 = False
    with caplog.at_level("WARNING", logger="para_ros.contract"):
        a = PolicySpec.from_dict(d)
        b = PolicySpec.from_dict(d)
    assert a == b and a.spec_version == 2
    # the defaults, with the speed bound derived from the window (dt 0.25 s: 0.05 / 0.25)
    assert a.executor == contract.ExecutorSpec(max_speed_mps=0.2)
    assert a.executor.execute_step == 0 and a.executor.max_step_m == 0.05
    assert a.executor.controller == "reach_then_observe"
    assert a.executor.max_angular_speed_rps == contract.DEFAULT_MAX_ANGULAR_SPEED_RPS == 1.0
    said = [r for r in caplog.records if "version 1 has no `executor`" in r.getMessage()]
    assert len(said) == 1
    assert "max_speed_mps = max_step_m / window.dt" in said[0].getMessage()


def test_version_1_with_an_executor_key_is_refused():
    d = _spec_dict()
    d["spec_version"] = 1
    with pytest.raises(SpecError, match=r"`executor`: unknown key in a spec_version 1 file"):
        PolicySpec.from_dict(d)


def test_executor_is_validated_against_the_window():
    d = _spec_dict()
    d["executor"]["execute_step"] = d["window"]["steps"]
    with pytest.raises(SpecError, match=r"`executor\.execute_step`: 6 is outside the chunk"):
        PolicySpec.from_dict(d)
    d = _spec_dict()
    d["executor"]["max_step_m"] = 0.0
    with pytest.raises(SpecError, match=r"`executor\.max_step_m`: must be metres > 0"):
        PolicySpec.from_dict(d)
    d = _spec_dict()
    d["executor"]["controller"] = "teleport"
    with pytest.raises(SpecError, match=r"`executor\.controller`: expected one of"):
        PolicySpec.from_dict(d)


def _v2_without_speeds(dt: float, max_step_m: float) -> dict:
    """A version-2 dict as written before the executor's speed bounds existed."""
    d = _spec_dict()
    d["window"]["dt"] = dt
    d["executor"]["max_step_m"] = max_step_m
    del d["executor"]["max_speed_mps"], d["executor"]["max_angular_speed_rps"]
    return d


def test_version_1_speed_follows_its_window():
    d = _v2_without_speeds(0.1, 0.05)
    del d["executor"]
    d["spec_version"] = 1
    ex = PolicySpec.from_dict(d).executor
    assert ex.max_speed_mps == pytest.approx(0.5, rel=1e-12)  # 5 cm per 0.1 s frame
    assert ex.max_angular_speed_rps == 1.0


def test_version_2_without_speed_keys_reads_the_documented_defaults_once(caplog):
    import para_ros.core.contract as contract

    d = _v2_without_speeds(0.2, 0.04)
    contract._said_speeds = False
    with caplog.at_level("WARNING", logger="para_ros.contract"):
        a = PolicySpec.from_dict(d)
        b = PolicySpec.from_dict(d)
    assert a == b
    assert a.executor.max_speed_mps == pytest.approx(0.2, rel=1e-12)  # 4 cm per 0.2 s
    assert a.executor.max_angular_speed_rps == 1.0
    said = [r for r in caplog.records if "records no max_speed_mps" in r.getMessage()]
    assert len(said) == 1 and "max_angular_speed_rps = 1.0" in said[0].getMessage()
    # written again, the values are recorded and read back unchanged
    again = json.loads(a.to_json())["executor"]
    assert again["max_speed_mps"] == a.executor.max_speed_mps
    assert PolicySpec.from_dict(a.to_dict()) == a


def test_shipped_model_without_speed_keys_keeps_loading():
    from pathlib import Path

    import onnx

    from para_ros.core.onnx_metadata import METADATA_KEY, read_spec

    path = Path(__file__).resolve().parents[1] / "models/para_libero_spatial_t0/model.onnx"
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    raw = json.loads(meta[METADATA_KEY])["executor"]
    assert "max_speed_mps" not in raw and "max_angular_speed_rps" not in raw
    spec = read_spec(path)
    assert spec.window.dt == 0.1 and spec.executor.max_step_m == 0.05
    assert spec.executor.max_speed_mps == pytest.approx(0.5, rel=1e-12)
    assert spec.executor.max_angular_speed_rps == 1.0
    assert spec.executor.controller == "reach_then_observe"
    assert spec.executor.execute_step == raw["execute_step"] == 1


def test_unrecorded_speed_follows_the_window_of_a_built_spec():
    from para_ros.core.contract import ExecutorSpec, WindowSpec

    spec = PolicySpec(window=WindowSpec(dt=0.1), executor=ExecutorSpec(max_step_m=0.03))
    assert spec.executor.max_speed_mps == pytest.approx(0.3, rel=1e-12)
    spec = PolicySpec(window=WindowSpec(dt=0.1), executor=ExecutorSpec(max_speed_mps=0.12))
    assert spec.executor.max_speed_mps == 0.12
    streaming = spec.replace(executor=ExecutorSpec(controller="streaming", max_speed_mps=0.25))
    assert PolicySpec.from_json(streaming.to_json()) == streaming


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_speed_mps", 0.0, r"`executor\.max_speed_mps`: must be a finite metres/second > 0"),
        ("max_speed_mps", -0.3, r"`executor\.max_speed_mps`: must be .* > 0, got -0\.3"),
        ("max_speed_mps", None, r"`executor\.max_speed_mps`: expected a number, got NoneType"),
        ("max_speed_mps", "fast", r"`executor\.max_speed_mps`: expected a number, got str"),
        ("max_speed_mps", float("inf"), r"`executor\.max_speed_mps`: expected a finite number"),
        ("max_angular_speed_rps", 0.0, r"`executor\.max_angular_speed_rps`: must be a finite"),
        ("max_angular_speed_rps", float("nan"), r"`executor\.max_angular_speed_rps`: expected"),
        ("controller", "servo", r"`executor\.controller`: expected one of 'reach_then_observe'"),
    ],
)
def test_bad_speed_bounds_and_controllers_are_refused_with_the_key_path(key, value, expected):
    d = _spec_dict()
    d["executor"][key] = value
    text = json.dumps(d)  # Infinity / NaN survive the JSON text
    with pytest.raises(SpecError, match=expected):
        PolicySpec.from_json(text)


def test_executor_spec_validate_names_the_path():
    from para_ros.core.contract import ExecutorSpec

    with pytest.raises(SpecError, match=r"`executor\.controller`: .*got 'streeming' \(did you"):
        ExecutorSpec(controller="streeming").validate("executor")
    with pytest.raises(SpecError, match=r"`executor\.max_angular_speed_rps`: .*got -1"):
        ExecutorSpec(max_angular_speed_rps=-1.0).validate("executor")


def test_para_export_executor_flags_write_the_speed_bounds():
    import argparse

    from para_ros.core.contract import WindowSpec
    from para_training.export import add_executor_flags, executor_from_args

    ap = argparse.ArgumentParser()
    add_executor_flags(ap)
    checkpoint = PolicySpec(window=WindowSpec(dt=0.1))  # the checkpoint's own spec
    # defaults: reach_then_observe, max_speed_mps from the checkpoint's window, 1 rad/s
    ex = checkpoint.replace(executor=executor_from_args(ap.parse_args([]))).executor
    assert ex.controller == "reach_then_observe"
    assert ex.max_speed_mps == pytest.approx(0.5, rel=1e-12)  # 0.05 m / 0.1 s
    assert ex.max_angular_speed_rps == 1.0
    argv = ["--controller", "streaming", "--max-speed", "0.3", "--max-angular-speed", "0.7"]
    spec = checkpoint.replace(executor=executor_from_args(ap.parse_args(argv)))
    written = json.loads(spec.to_json())["executor"]
    assert written["controller"] == "streaming"
    assert (written["max_speed_mps"], written["max_angular_speed_rps"]) == (0.3, 0.7)
    ex = executor_from_args(ap.parse_args(["--max-step", "0.03"]))
    assert checkpoint.replace(executor=ex).executor.max_speed_mps == pytest.approx(0.3)
    with pytest.raises(SpecError, match=r"`executor\.max_speed_mps`: must be .*got 0\.0"):
        executor_from_args(ap.parse_args(["--max-speed", "0"]))
    with pytest.raises(SystemExit):
        ap.parse_args(["--controller", "servo"])
