"""Bin codecs: continuous values <-> class indices (DESIGN §4), numpy only.

* `LinearBins`: height (world Z, metres) and gripper bins; bin b covers
  [min + b w, min + (b + 1) w), w = (max - min) / n; values outside are clipped to the end bins.
* Rotation codecs over scipy "xyz" euler angles (radians):
  - `Pca1dRotation` (default, seed: 48 bins): s = wrap(euler - mean) . axis, binned linearly.
    Only the component along the principal axis survives the round trip.
  - `EulerBins`: each axis binned on its own (3 x n classes).
  - `KMeansRotation`: K centroids; the class is the geodesically nearest centroid.

Euler angles live on a circle: a gripper pointing down has roll = +-pi and noise flips it
between the two. Every rotation codec wraps angles about a centre taken from the data
(`mean` / the axis mid-point) before binning, so such data stays contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core.contract import EULER_CONVENTION, LinearBinsSpec, RotationSpec
from para_ros.core.geometry import wrap_angle

DEFAULT_MIN_EXPLAINED_VARIANCE = 0.85  # PC1 gate of the seed's precompute_rotation_pca.py


class BasisGateError(ValueError):
    """The fitted rotation basis does not represent the data well enough to be used."""


@dataclass(frozen=True)
class LinearBins:
    n_bins: int
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if self.n_bins <= 0 or not self.hi > self.lo:
            raise ValueError(f"LinearBins needs n_bins > 0 and lo < hi, got {self}")

    @classmethod
    def from_spec(cls, spec: LinearBinsSpec) -> LinearBins:
        return cls(spec.n_bins, spec.min, spec.max)

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.n_bins

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(...) values -> (...) int64 bins in [0, n)."""
        v = np.asarray(values, dtype=np.float64)
        b = np.floor((v - self.lo) / (self.hi - self.lo) * self.n_bins)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def decode(self, bins: np.ndarray) -> np.ndarray:
        """(...) bins -> (...) bin-centre values: lo + (b + 0.5) w."""
        return self.lo + (np.asarray(bins, dtype=np.float64) + 0.5) * self.width


def _wrap_about(euler: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Represent each angle within (centre - pi, centre + pi]."""
    return centre + wrap_angle(np.asarray(euler, dtype=np.float64) - centre)


def _circular_mean(euler: np.ndarray) -> np.ndarray:
    return np.arctan2(np.sin(euler).mean(axis=0), np.cos(euler).mean(axis=0))


# -- pca1d -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pca1dRotation:
    mean: np.ndarray  # (3,) euler, radians; also the wrap centre
    axis: np.ndarray  # (3,) unit principal axis
    smin: float  # projected range, radians along `axis`
    smax: float
    n_bins: int = 48
    explained_variance_ratio: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0]))

    @property
    def n_classes(self) -> int:
        return self.n_bins

    @property
    def radians_per_bin(self) -> float:
        return (self.smax - self.smin) / self.n_bins

    def project(self, euler: np.ndarray) -> np.ndarray:
        """(..., 3) euler -> (...) coordinate along the axis, radians."""
        return (_wrap_about(euler, self.mean) - self.mean) @ self.axis

    def encode(self, euler: np.ndarray) -> np.ndarray:
        s = self.project(euler)
        b = np.floor((s - self.smin) / (self.smax - self.smin) * self.n_bins)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def decode(self, bins: np.ndarray) -> np.ndarray:
        """(...) bins -> (..., 3) euler = mean + s axis, s at the bin centre."""
        s = self.smin + (np.asarray(bins, dtype=np.float64) + 0.5) * self.radians_per_bin
        return self.mean + s[..., None] * self.axis

    def to_spec(self) -> RotationSpec:
        return RotationSpec(
            mode="pca1d",
            n_bins=self.n_bins,
            pca_mean=tuple(float(x) for x in self.mean),
            pca_axis=tuple(float(x) for x in self.axis),
            pca_min=float(self.smin),
            pca_max=float(self.smax),
            explained_variance_ratio=tuple(float(x) for x in self.explained_variance_ratio),
        )

    def report(self) -> str:
        ev = self.explained_variance_ratio
        return "\n".join(
            [
                "rotation basis: pca1d (scipy 'xyz' euler, radians)",
                "  explained variance ratio: "
                + ", ".join(f"PC{k + 1}={v:.4f}" for k, v in enumerate(ev)),
                "  principal axis v1 = [" + ", ".join(f"{x:+.3f}" for x in self.axis) + "]",
                "  mean mu = [" + ", ".join(f"{x:+.3f}" for x in self.mean) + "]",
                f"  projected range [{self.smin:+.3f}, {self.smax:+.3f}] rad -> "
                f"{self.radians_per_bin:.4f} rad/bin at {self.n_bins} bins",
            ]
        )


def fit_pca1d(
    euler: np.ndarray,
    n_bins: int = 48,
    min_explained_variance: float = DEFAULT_MIN_EXPLAINED_VARIANCE,
    allow_low_variance: bool = False,
) -> Pca1dRotation:
    """Fit the 1-D PCA rotation basis to (N, 3) euler angles (radians).

    Raises BasisGateError when PC1 explains less than `min_explained_variance` of the variance,
    unless `allow_low_variance` (the seed proceeded at 0.81 with the user's consent).
    """
    e = np.asarray(euler, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != 3 or len(e) < 2 or not np.isfinite(e).all():
        raise ValueError(f"fit_pca1d needs (N >= 2, 3) finite euler angles, got shape {e.shape}")
    e = _wrap_about(e, _circular_mean(e))
    mean = e.mean(axis=0)
    centred = e - mean
    cov = centred.T @ centred / len(e)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    total = float(evals.sum())
    ratio = evals / total if total > 0 else np.array([1.0, 0.0, 0.0])
    axis = evecs[:, 0]
    axis = axis if axis[np.argmax(np.abs(axis))] >= 0 else -axis  # deterministic sign
    if ratio[0] < min_explained_variance and not allow_low_variance:
        raise BasisGateError(
            f"PC1 explains {ratio[0]:.4f} of the rotation variance, below the gate "
            f"{min_explained_variance:.2f} (PC2={ratio[1]:.4f}, PC3={ratio[2]:.4f}): a 1-D basis "
            "cannot represent the remaining motion. Use mode 'kmeans' (or 'euler'), or accept "
            "the loss explicitly with --allow-low-variance (the override)."
        )
    s = centred @ axis
    smin, smax = float(s.min()), float(s.max())
    if smax - smin < 1e-6:  # constant orientation: keep a non-degenerate range
        smin, smax = smin - 1e-3, smax + 1e-3
    return Pca1dRotation(mean, axis, smin, smax, n_bins, ratio)


# -- per-axis euler ----------------------------------------------------------------------


@dataclass(frozen=True)
class EulerBins:
    lo: np.ndarray  # (3,) radians
    hi: np.ndarray  # (3,)
    n_bins: int = 32

    @property
    def n_classes(self) -> int:
        return 3 * self.n_bins

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    def encode(self, euler: np.ndarray) -> np.ndarray:
        """(..., 3) euler -> (..., 3) per-axis bins in [0, n)."""
        e = _wrap_about(euler, self.centre)
        b = np.floor((e - self.lo) / (self.hi - self.lo) * self.n_bins)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def decode(self, bins: np.ndarray) -> np.ndarray:
        b = np.asarray(bins, dtype=np.float64)
        return self.lo + (b + 0.5) * (self.hi - self.lo) / self.n_bins

    def to_spec(self) -> RotationSpec:
        return RotationSpec(
            mode="euler",
            n_bins=self.n_bins,
            euler_min=tuple(float(x) for x in self.lo),
            euler_max=tuple(float(x) for x in self.hi),
        )


def fit_euler_bins(euler: np.ndarray, n_bins: int = 32) -> EulerBins:
    e = np.asarray(euler, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != 3 or len(e) < 1 or not np.isfinite(e).all():
        raise ValueError(f"fit_euler_bins needs (N, 3) finite euler angles, got {e.shape}")
    e = _wrap_about(e, _circular_mean(e))
    lo, hi = e.min(axis=0), e.max(axis=0)
    pad = np.where(hi - lo < 1e-6, 1e-3, 0.0)
    return EulerBins(lo - pad, hi + pad, n_bins)


# -- k-means -----------------------------------------------------------------------------


def _quats(euler: np.ndarray) -> np.ndarray:
    return Rotation.from_euler(EULER_CONVENTION, np.asarray(euler).reshape(-1, 3)).as_quat()


@dataclass(frozen=True)
class KMeansRotation:
    centroids: np.ndarray  # (K, 3) euler, radians

    @property
    def n_classes(self) -> int:
        return len(self.centroids)

    def encode(self, euler: np.ndarray) -> np.ndarray:
        """(..., 3) euler -> (...) index of the geodesically nearest centroid."""
        e = np.asarray(euler, dtype=np.float64)
        q = _quats(e)  # (N, 4)
        c = _quats(self.centroids)  # (K, 4)
        sim = np.abs(q @ c.T)  # |<q, c>| = cos(angle / 2), sign-invariant
        return np.argmax(sim, axis=1).reshape(e.shape[:-1])

    def decode(self, bins: np.ndarray) -> np.ndarray:
        return self.centroids[np.asarray(bins, dtype=np.int64)]

    def to_spec(self) -> RotationSpec:
        return RotationSpec(
            mode="kmeans",
            n_bins=len(self.centroids),
            centroids=tuple(tuple(float(x) for x in c) for c in self.centroids),
        )


def fit_kmeans(euler: np.ndarray, k: int = 48, iters: int = 50, seed: int = 0) -> KMeansRotation:
    """Spherical k-means on unit quaternions (q ~ -q), k-means++ initialisation."""
    e = np.asarray(euler, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != 3 or not np.isfinite(e).all():
        raise ValueError(f"fit_kmeans needs (N, 3) finite euler angles, got shape {e.shape}")
    q = _quats(e)
    k = min(k, len(q))
    rng = np.random.default_rng(seed)
    centres = [q[rng.integers(len(q))]]
    for _ in range(1, k):
        # sin^2(angle / 2) to the nearest chosen centre (clipped: rounding gives -1e-16)
        d = np.clip(1.0 - np.max(np.abs(q @ np.array(centres).T), axis=1) ** 2, 0.0, None)
        p = d / d.sum() if d.sum() > 0 else np.full(len(q), 1 / len(q))
        centres.append(q[rng.choice(len(q), p=p)])
    C = np.array(centres)
    for _ in range(iters):
        assign = np.argmax(np.abs(q @ C.T), axis=1)
        newC = C.copy()
        for j in range(k):
            members = q[assign == j]
            if len(members):
                # principal eigenvector of sum q q^T: the sign-invariant quaternion mean
                _w, v = np.linalg.eigh(members.T @ members)
                newC[j] = v[:, -1]
        if np.allclose(np.abs(np.sum(newC * C, axis=1)), 1.0, atol=1e-12):
            C = newC
            break
        C = newC
    return KMeansRotation(Rotation.from_quat(C).as_euler(EULER_CONVENTION))


# -- from the contract -------------------------------------------------------------------

RotationCodec = Pca1dRotation | EulerBins | KMeansRotation


def rotation_codec_from_spec(spec: RotationSpec) -> RotationCodec:
    if spec.mode == "pca1d":
        return Pca1dRotation(
            mean=np.array(spec.pca_mean),
            axis=np.array(spec.pca_axis),
            smin=spec.pca_min,
            smax=spec.pca_max,
            n_bins=spec.n_bins,
            explained_variance_ratio=np.array(spec.explained_variance_ratio),
        )
    if spec.mode == "euler":
        return EulerBins(np.array(spec.euler_min), np.array(spec.euler_max), spec.n_bins)
    if spec.mode == "kmeans":
        return KMeansRotation(np.array(spec.centroids, dtype=np.float64))
    raise ValueError(f"unknown rotation mode {spec.mode!r}; expected pca1d, euler or kmeans")


def geodesic_angle(euler_a: np.ndarray, euler_b: np.ndarray) -> np.ndarray:
    """(..., 3) x (..., 3) euler -> (...) rotation angle between them, radians in [0, pi]."""
    a = np.asarray(euler_a, dtype=np.float64)
    qa, qb = _quats(a), _quats(np.broadcast_to(euler_b, a.shape))
    dot = np.clip(np.abs(np.sum(qa * qb, axis=1)), 0.0, 1.0)
    return (2.0 * np.arccos(dot)).reshape(a.shape[:-1])


__all__ = [
    "DEFAULT_MIN_EXPLAINED_VARIANCE",
    "BasisGateError",
    "EulerBins",
    "KMeansRotation",
    "LinearBins",
    "Pca1dRotation",
    "RotationCodec",
    "fit_euler_bins",
    "fit_kmeans",
    "fit_pca1d",
    "geodesic_angle",
    "rotation_codec_from_spec",
]
