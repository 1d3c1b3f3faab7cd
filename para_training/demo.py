"""`para-demo`: the whole training path on generated data, in about a minute on 2 cores.

generate synthetic demos (HDF5) -> fit the rotation basis -> train the tiny preset ->
export ONNX (with parity) -> decode validation frames through ONNX Runtime and the pure core,
and print the 3D error of the decoded targets against the recorded future.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default="results/demo", help="output folder")
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from para_ros.core.action_codec import Codecs, decode_chunk
    from para_ros.core.onnx_metadata import read_spec
    from para_training.configs import DataConfig, TrainConfig, get_preset
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.data.hdf5_io import write_hdf5
    from para_training.data.readers import load_episodes
    from para_training.data.synthetic import make_episodes
    from para_training.export import export_onnx, parity
    from para_training.rotation_basis import main as basis_main
    from para_training.train import split_episodes, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data_path = out / "synthetic_demos.hdf5"
    write_hdf5(data_path, make_episodes(args.episodes, seed=0, n_frames=40))
    print(f"[1/5] wrote {args.episodes} synthetic demos to {data_path}")
    print("[2/5] rotation basis")
    if basis_main([str(data_path), "--bins", "12"]) != 0:
        return 1
    p = get_preset("tiny")
    data = DataConfig(
        data=[str(data_path)], val_fraction=0.17, **{**p["data"], "rotation_bins": 12}
    )
    cfg = TrainConfig(
        output_dir=str(out / "runs"),
        run_name="tiny",
        epochs=args.epochs,
        threads=1,
        progress=False,
        **p["train"],
    )
    print(f"[3/5] training the tiny preset for {args.epochs} epochs")
    run_dir, metrics = train(data, p["model"], cfg)
    onnx_path = out / "tiny.onnx"
    export_onnx(run_dir / "best", onnx_path)
    rep = parity(onnx_path, run_dir / "best")
    print(
        f"[4/5] exported {onnx_path}; parity: voxel agreement {rep['voxel_agreement']:.3f}, "
        f"heatmap rel. error {rep['heatmap_rel_err']:.2e}"
    )
    spec = read_spec(onnx_path)
    episodes = load_episodes(data_path)
    _, val_ids = split_episodes(len(episodes), data.val_fraction, cfg.seed)
    ds = ParaWindowDataset(episodes, spec, sample_index(episodes, val_ids))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    codecs = Codecs.from_spec(spec)
    errs, lat = [], []
    for k in range(0, len(ds), 5):
        item = ds[k]
        t1 = time.perf_counter()
        voxel, prob, gbin, rbin = sess.run(
            ["voxel", "voxel_prob", "gripper_bin", "rotation_bin"],
            {"image": item["image"].numpy()[None], "start_keypoint": item["start"].numpy()[None]},
        )
        chunk = decode_chunk(
            spec,
            codecs,
            voxel[0],
            prob[0],
            gbin[0],
            rbin[0],
            item["K"].numpy(),
            item["T_world_cam"].numpy(),
        )
        lat.append((time.perf_counter() - t1) * 1e3)
        ok = chunk.valid & (item["voxel_index"].numpy() >= 0)
        errs += (
            np.linalg.norm(chunk.positions - item["target_pos"].numpy(), axis=1)[ok] * 1e3
        ).tolist()
    summary = {
        "val_pix": metrics.get("val_pix"),
        "val_grip_acc": metrics.get("val_grip_acc"),
        "onnx_3d_err_mm_median": float(np.median(errs)),
        "onnx_3d_err_mm_p90": float(np.percentile(errs, 90)),
        "onnx_infer_decode_ms_median": float(np.median(lat)),
        "frames": len(lat),
        "seconds": time.perf_counter() - t0,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"[5/5] ONNX Runtime + decode on {len(lat)} held-out frames: 3D error median "
        f"{summary['onnx_3d_err_mm_median']:.1f} mm (p90 {summary['onnx_3d_err_mm_p90']:.1f}"
        f" mm), {summary['onnx_infer_decode_ms_median']:.2f} ms per frame"
    )
    print(f"done in {summary['seconds']:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
