"""Codec round trips (within half a bin) and the PCA basis gate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from para_ros.core import codecs as c
from para_ros.core.contract import PolicySpec

finite = dict(allow_nan=False, allow_infinity=False)


@given(
    st.integers(1, 64),
    st.floats(-2, 2, **finite),
    st.floats(0.01, 3, **finite),
    st.floats(0, 1, **finite),
)
def test_linear_bins_round_trip(n, lo, span, frac):
    bins = c.LinearBins(n, lo, lo + span)
    v = lo + frac * span
    b = bins.encode(v)
    assert 0 <= b < n
    assert abs(bins.decode(b) - v) <= bins.width / 2 + 1e-9


def test_linear_bins_clip_and_formula():
    bins = c.LinearBins(32, 0.8, 1.2)
    assert bins.encode([0.0, 0.8, 1.2, 5.0]).tolist() == [0, 0, 31, 31]
    assert bins.decode(0) == pytest.approx(0.8 + 0.5 * 0.4 / 32)


def _pca_data(rng, n=300, ev_axis=(0.171, -0.016, 0.985)):
    axis = np.array(ev_axis) / np.linalg.norm(ev_axis)
    mean = np.array([0.991, -1.432, 0.750])  # the seed's basis
    s = rng.uniform(-2.0, 2.0, n)
    return mean + s[:, None] * axis + rng.normal(0, 0.01, (n, 3)), axis


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 1, **finite), st.integers(0, 2**31 - 1))
def test_pca1d_round_trip_within_half_bin(frac, seed):
    data, _ = _pca_data(np.random.default_rng(seed))
    codec = c.fit_pca1d(data, n_bins=48)
    s = codec.smin + frac * (codec.smax - codec.smin)
    e = codec.mean + s * codec.axis  # a rotation on the basis
    decoded = codec.decode(codec.encode(e))
    assert abs(codec.project(decoded) - s) <= codec.radians_per_bin / 2 + 1e-9
    # adding 2 pi to an angle does not move it along the axis (bins follow, up to bin edges)
    assert abs(codec.project(e + [2 * np.pi, 0, -2 * np.pi]) - codec.project(e)) < 1e-9


def test_pca1d_handles_roll_wrapping_at_pi():
    rng = np.random.default_rng(0)
    yaw = rng.uniform(-1, 1, 200)
    roll = np.pi + rng.normal(0, 0.02, 200)  # gripper pointing down: +-pi flips
    e = np.stack([np.angle(np.exp(1j * roll)), np.zeros(200), yaw], axis=1)
    codec = c.fit_pca1d(e)
    assert codec.explained_variance_ratio[0] > 0.99
    assert abs(codec.axis[2]) > 0.99  # yaw, not a spurious 2 pi roll jump


def test_pca_gate_refuses_low_variance_and_accepts_override():
    rng = np.random.default_rng(1)
    # PC1 ~ 0.81, PC2 ~ 0.19, like the seed's izzy_home_recording_2 basis
    z = rng.normal(size=(4000, 3)) * np.sqrt([0.81, 0.19, 1e-6])
    with pytest.raises(c.BasisGateError) as err:
        c.fit_pca1d(z)
    msg = str(err.value)
    assert "PC1 explains 0.8" in msg and "below the gate 0.85" in msg
    assert "--allow-low-variance" in msg and "kmeans" in msg
    codec = c.fit_pca1d(z, allow_low_variance=True)
    assert 0.79 < codec.explained_variance_ratio[0] < 0.83
    report = codec.report()
    assert "PC1=0.8" in report and "rad/bin at 48 bins" in report


def test_pca_spec_round_trip():
    data, axis = _pca_data(np.random.default_rng(3))
    codec = c.fit_pca1d(data)
    assert abs(abs(codec.axis @ axis) - 1) < 1e-3
    spec = PolicySpec(rotation=codec.to_spec())
    back = c.rotation_codec_from_spec(PolicySpec.from_json(spec.to_json()).rotation)
    assert np.array_equal(back.encode(data), codec.encode(data))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1, **finite), min_size=3, max_size=3), st.integers(2, 64))
def test_euler_bins_round_trip(frac, n):
    data = np.random.default_rng(0).uniform([-0.5, -1.0, 2.0], [0.5, 1.0, 3.0], (100, 3))
    codec = c.fit_euler_bins(data, n_bins=n)
    e = codec.lo + np.array(frac) * (codec.hi - codec.lo)
    b = codec.encode(e)
    assert b.shape == (3,) and ((b >= 0) & (b < n)).all()
    assert (np.abs(codec.decode(b) - e) <= (codec.hi - codec.lo) / n / 2 + 1e-9).all()
    back = c.rotation_codec_from_spec(codec.to_spec())
    assert np.array_equal(back.encode(e), b)


def test_kmeans_recovers_clusters_and_decodes_nearest():
    rng = np.random.default_rng(0)
    centres = np.array([[np.pi, 0, 0], [np.pi, 0, 1.2], [2.5, 0.3, -1.0], [0.0, 0.0, 0.0]])
    data = np.concatenate([m + rng.normal(0, 0.02, (50, 3)) for m in centres])
    codec = c.fit_kmeans(data, k=4)
    found = sorted(
        np.round(
            c.geodesic_angle(
                codec.centroids[:, None].repeat(4, 1).reshape(-1, 3), np.tile(centres, (4, 1))
            )
            .reshape(4, 4)
            .min(1),
            2,
        )
    )
    assert max(found) < 0.05  # every fitted centroid sits on a true cluster (radians)
    labels = codec.encode(data)
    assert len(set(labels.tolist())) == 4
    decoded = codec.decode(labels)
    d_assigned = c.geodesic_angle(data, decoded)
    for k in range(4):
        d_k = c.geodesic_angle(data, np.broadcast_to(codec.centroids[k], data.shape))
        assert (d_assigned <= d_k + 1e-9).all()  # decode = the nearest centroid
    back = c.rotation_codec_from_spec(codec.to_spec())
    assert np.array_equal(back.encode(data), labels)
