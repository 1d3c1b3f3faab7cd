"""`para-rotation-basis DATA`: fit the rotation classes of a dataset and report them.

pca1d (default, seed): 1-D PCA of the EEF euler angles, refused when PC1 explains less than
0.85 of the variance unless --allow-low-variance is given; kmeans: K geodesic centroids;
euler: per-axis bins. The basis is written as JSON (a RotationSpec) where para-train finds it:
<DATA>/rotation_basis.json for a folder, <DATA stem>.rotation_basis.json beside a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from para_ros.core.codecs import BasisGateError, fit_euler_bins, fit_kmeans, fit_pca1d
from para_ros.core.contract import RotationSpec, parse
from para_ros.data.episode import Episode
from para_ros.data.source import add_source_args, source_from_args


def default_basis_path(data: list[str] | str) -> Path:
    first = Path(data[0] if isinstance(data, (list, tuple)) else data)
    if first.is_dir() and not (first / "metadata.yaml").is_file():
        return first / "rotation_basis.json"
    return first.with_name(first.stem + ".rotation_basis.json")


def fit_rotation(
    episodes: list[Episode],
    mode: str = "pca1d",
    n_bins: int = 48,
    min_explained_variance: float = 0.85,
    allow_low_variance: bool = False,
) -> tuple[RotationSpec, str]:
    """Fit on every frame of every episode; returns (spec, human-readable report)."""
    euler = np.concatenate([e.eef_euler() for e in episodes])  # (N, 3)
    head = f"{len(euler)} frames from {len(episodes)} episodes"
    if mode == "pca1d":
        codec = fit_pca1d(euler, n_bins, min_explained_variance, allow_low_variance)
        report = codec.report()
        if codec.explained_variance_ratio[0] < min_explained_variance:
            report += (
                f"\n  WARNING: PC1 ratio {codec.explained_variance_ratio[0]:.4f} < "
                f"{min_explained_variance} accepted by --allow-low-variance"
            )
    elif mode == "kmeans":
        codec = fit_kmeans(euler, k=n_bins)
        err = np.degrees(np.median(_nearest_angle(codec, euler)))
        report = (
            f"rotation basis: kmeans, K={codec.n_classes} centroids; median angle to "
            f"the assigned centroid {err:.2f} deg"
        )
    elif mode == "euler":
        codec = fit_euler_bins(euler, n_bins)
        report = "rotation basis: euler, per axis [lo, hi] rad: " + ", ".join(
            f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in zip(codec.lo, codec.hi, strict=True)
        )
    else:
        raise ValueError(f"unknown rotation mode {mode!r}; expected pca1d, kmeans or euler")
    return codec.to_spec(), f"{head}\n{report}"


def _nearest_angle(codec, euler):
    from para_ros.core.codecs import geodesic_angle

    return geodesic_angle(euler, codec.decode(codec.encode(euler)))


def save_basis(path: Path, spec: RotationSpec) -> None:
    from para_ros.core.contract import to_jsonable

    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_jsonable(spec), indent=2))
    tmp.replace(path)


def load_basis(path: Path) -> RotationSpec:
    return parse(RotationSpec, json.loads(Path(path).read_text()), "rotation")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-rotation-basis",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "data", nargs="+", help="HDF5 files, LeRobot datasets, bags or episode folders"
    )
    ap.add_argument("--mode", default="pca1d", choices=["pca1d", "kmeans", "euler"])
    ap.add_argument("--bins", type=int, default=48, help="pca1d bins / kmeans K / euler bins")
    ap.add_argument("--min-explained-variance", type=float, default=0.85)
    ap.add_argument(
        "--allow-low-variance",
        action="store_true",
        help="accept a pca1d basis below the explained-variance gate",
    )
    ap.add_argument("-o", "--output", default="", help="output JSON (default: see above)")
    add_source_args(ap)
    args = ap.parse_args(argv)
    from para_ros.data.episode import EpisodeError
    from para_ros.data.readers import load_episodes

    try:
        episodes = load_episodes(args.data, source_from_args(args))
    except (EpisodeError, ValueError) as exc:
        print(f"para-rotation-basis: {exc}", file=sys.stderr)
        return 2
    try:
        spec, report = fit_rotation(
            episodes, args.mode, args.bins, args.min_explained_variance, args.allow_low_variance
        )
    except BasisGateError as exc:
        print(f"para-rotation-basis: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else default_basis_path(args.data)
    try:
        save_basis(out, spec)
    except OSError as exc:
        print(f"para-rotation-basis: cannot write {out} ({exc}); choose -o FILE", file=sys.stderr)
        return 2
    print(report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
