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
    assert a.executor == contract.ExecutorSpec()
    assert a.executor.execute_step == 0 and a.executor.max_step_m == 0.05
    said = [r for r in caplog.records if "version 1 has no `executor`" in r.getMessage()]
    assert len(said) == 1


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
