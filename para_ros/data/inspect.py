"""`para-inspect DATA...`: what a file or folder holds, what the reader takes for each field,
and what is missing and how to supply it. The first command to run on your own data.

It takes the same data-source options as para-train, para-rotation-basis and para-replay-eval
(`--format`, topics, keys, frames, `--calibration`, ...) and reads the data exactly as they do.
Exit codes: 0 every path reads into episodes, 2 something is missing or wrong (said why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from para_ros.data.source import add_source_args, describe, source_from_args


def _holds_bag(path: Path) -> list[str]:
    from rosbags.highlevel import AnyReader

    from para_ros.data.rosbag_io import _typestore

    lines = []
    with AnyReader([path], default_typestore=_typestore()) as reader:
        for c in sorted(reader.connections, key=lambda c: c.topic):
            lines.append(f"  topic {c.topic}  {c.msgtype}  ({c.msgcount} messages)")
        frames: dict[str, str] = {}
        tf = [c for c in reader.connections if c.topic in ("/tf", "/tf_static")]
        for conn, _, raw in reader.messages(connections=tf):
            for tr in reader.deserialize(raw, conn.msgtype).transforms:
                frames[tr.child_frame_id] = f"{tr.header.frame_id} ({conn.topic})"
        for child, parent in sorted(frames.items()):
            lines.append(f"  tf {parent} -> {child}")
    return lines


def _holds_hdf5(path: Path) -> list[str]:
    import h5py

    lines = []
    with h5py.File(path, "r") as f:
        data = f.get("data")
        if data is None:
            return ["  no /data group"]
        for k in ("macros_image_convention", "env_name"):
            if k in data.attrs:
                lines.append(f"  /data attr {k} = {data.attrs[k]!r}")
        demos = list(data)
        lines.append(
            f"  {len(demos)} demos: {', '.join(demos[:5])}{' ...' if len(demos) > 5 else ''}"
        )
        if demos:
            g = data[demos[0]]
            lines.append(f"  {demos[0]} attrs: {sorted(g.attrs)}")
            g.visititems(
                lambda n, o: (
                    lines.append(f"    {n} {o.shape} {o.dtype}") if hasattr(o, "shape") else None
                )
            )
    return lines


def _holds_lerobot(path: Path) -> list[str]:
    info = json.loads((path / "meta" / "info.json").read_text())
    lines = [
        f"  LeRobot {info.get('codebase_version')}: {info.get('total_episodes')} episodes, "
        f"{info.get('total_frames')} frames at {info.get('fps')} fps, robot "
        f"{info.get('robot_type')}"
    ]
    for k, v in info.get("features", {}).items():
        names = v.get("names")
        codec = v.get("info", {}).get("video.codec", "")
        lines.append(f"    {k} {v.get('dtype')} {v.get('shape')} {codec} {names or ''}".rstrip())
    lines.append("  no camera calibration field (LeRobot has none): --calibration FILE.json")
    return lines


def _checks(ep) -> list[str]:
    """Plausibility checks, as the node makes them: intrinsics vs image size, unit
    quaternions, the EEF projecting inside the image."""
    from para_ros.core.geometry import project

    out = []
    H, W = ep.image_hw
    K = ep.K_at(0)
    if not (0 < K[0, 2] < W and 0 < K[1, 2] < H):
        out.append(f"principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) outside the {W}x{H} image")
    norms = np.linalg.norm(ep.eef_quat, axis=1)
    if np.any(np.abs(norms - 1) > 1e-3):
        out.append(f"EEF quaternions not unit length ({norms.min():.4f}..{norms.max():.4f})")
    Ts = np.asarray(ep.T_world_cam)
    uv = np.stack(
        [
            project(ep.eef_pos[i], ep.K_at(i), Ts if Ts.ndim == 2 else Ts[i])[0]
            for i in range(len(ep))
        ]
    )
    inside = np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0)
    inside &= uv[:, 1] < H
    if inside.mean() < 0.9:
        out.append(
            f"the EEF projects inside the image on only {inside.mean():.0%} of frames: check "
            "the camera pose / frames and the image orientation"
        )
    return out


def inspect_path(path: Path, source, out=print) -> bool:
    from para_ros.data.episode import EpisodeError
    from para_ros.data.readers import detect_format, load_episodes

    try:
        fmt = detect_format(path) if source.format == "auto" else source.format
    except EpisodeError as exc:
        out(f"{path}: {exc}")
        return False
    out(f"{path}: format {fmt or 'folder of sources'}")
    try:
        if fmt == "rosbag":
            lines = _holds_bag(path)
        elif fmt in ("libero", "para-hdf5"):
            lines = _holds_hdf5(path) if path.is_file() else []
        elif fmt == "lerobot":
            lines = _holds_lerobot(path)
        else:
            lines = []
    except Exception as exc:  # a file too broken to list: the reader below says why
        lines = [f"  (cannot list: {type(exc).__name__}: {exc})"]
    for line in lines:
        out(line)
    reports: list = []
    try:
        episodes = load_episodes([path], source, reports=reports)
    except (EpisodeError, ValueError) as exc:
        out(f"  MISSING/WRONG: {exc}")
        return False
    out(f"  reads as {len(episodes)} episode(s) with the options: {describe(source)}")
    for r in reports:
        out(
            f"  {Path(r.path).name}: {r.images} images, {r.paired} used; skipped: "
            f"{r.skipped_no_state} without a state, {r.skipped_no_tf} outside /tf, "
            f"{r.skipped_bad_image} undecodable; K rescaled {r.rescaled_k}; gripper from "
            f"{r.gripper_source}"
        )
    ok = True
    for ep in episodes[:20]:
        K = ep.K_at(0)
        cam = ep.T_world_cam_at(0)[:3, 3]
        g = np.unique(np.round(ep.gripper, 3))
        out(
            f"  episode {ep.name}: {len(ep)} frames, {ep.image_hw[1]}x{ep.image_hw[0]} RGB, "
            f"{ep.fps:.1f} fps; K fx {K[0, 0]:.2f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f}; camera at "
            f"{np.round(cam, 3).tolist()}; EEF z {ep.eef_pos[:, 2].min():.3f}..."
            f"{ep.eef_pos[:, 2].max():.3f} m; gripper values {g[:6].tolist()}; joints "
            f"{ep.joints.shape[1]}; task {ep.language!r}"
        )
        for problem in _checks(ep):
            ok = False
            out(f"    CHECK: {problem}")
    if len(episodes) > 20:
        out(f"  ... and {len(episodes) - 20} more episodes")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-inspect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("data", nargs="+", help="files or folders of any supported format")
    add_source_args(ap)
    args = ap.parse_args(argv)
    try:
        source = source_from_args(args)
    except ValueError as exc:
        print(f"para-inspect: {exc}", file=sys.stderr)
        return 2
    ok = True
    for p in args.data:
        path = Path(p)
        if not path.exists():
            print(f"para-inspect: {path}: no such file or folder", file=sys.stderr)
            return 2
        ok &= inspect_path(path, source)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
