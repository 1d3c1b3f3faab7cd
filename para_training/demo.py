"""`para-demo-synthetic`: the whole path on generated data, in about a minute on 2 cores.

generate synthetic demos (HDF5) -> fit the rotation basis -> train the tiny preset ->
export ONNX (with parity) -> decode held-out frames through ONNX Runtime and the pure core
(3D error of the decoded targets against the recorded future) -> record a held-out episode
as a rosbag2 bag, score it offline (para-replay-eval) and play it at 1x into a live
para_policy node (end-to-end latency, dropped frames).
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
        prog="para-demo-synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", default="results/demo", help="output folder")
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from para_ros.core.action_codec import Codecs, decode_chunk
    from para_ros.core.onnx_metadata import read_spec
    from para_ros.data.hdf5_io import write_hdf5
    from para_ros.data.readers import load_episodes
    from para_ros.data.synthetic import make_episodes
    from para_training.configs import DataConfig, TrainConfig, get_preset
    from para_training.data.dataset import ParaWindowDataset, sample_index
    from para_training.export import export_onnx, parity
    from para_training.rotation_basis import main as basis_main
    from para_training.train import split_episodes, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data_path = out / "synthetic_demos.hdf5"
    write_hdf5(data_path, make_episodes(args.episodes, seed=0, n_frames=40))
    print(f"[1/6] wrote {args.episodes} synthetic demos to {data_path}")
    print("[2/6] rotation basis")
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
    print(f"[3/6] training the tiny preset for {args.epochs} epochs")
    run_dir, metrics = train(data, p["model"], cfg)
    onnx_path = out / "tiny.onnx"
    export_onnx(run_dir / "best", onnx_path)
    rep = parity(onnx_path, run_dir / "best")
    print(
        f"[4/6] exported {onnx_path}; parity: voxel agreement {rep['voxel_agreement']:.3f}, "
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

    print(
        f"[5/6] ONNX Runtime + decode on {len(lat)} held-out frames: 3D error median "
        f"{summary['onnx_3d_err_mm_median']:.1f} mm (p90 {summary['onnx_3d_err_mm_p90']:.1f}"
        f" mm), {summary['onnx_infer_decode_ms_median']:.2f} ms per frame"
    )
    summary.update(_through_ros(out, onnx_path, episodes[val_ids[0]]))
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"done in {summary['seconds']:.0f} s; results in {out}")
    return 0


def _through_ros(out: Path, onnx_path: Path, episode) -> dict:
    """Record a held-out episode as a rosbag2 bag, score the model on it offline
    (para-replay-eval), then play it at 1x into a live para_policy node (para-replay-timed)."""
    import os
    import subprocess

    from para_ros.data.rosbag_io import write_bag
    from para_ros.replay.cli import main as replay_eval
    from para_ros.replay.timed import replay

    bag = write_bag(out / "heldout.mcap", episode)
    replay_eval([str(bag), "--model", str(onnx_path), "-o", str(out / "replay"), "--no-progress"])
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # stay on this machine
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "para_ros.nodes.policy_node",
            "--ros-args",
            "-p",
            f"model_path:={onnx_path.resolve()}",
            "-p",
            "use_sim_time:=true",
            "-p",
            "image_topic:=/camera/image_raw",
            "-p",
            "camera_info_topic:=/camera/camera_info",
            "-p",
            "eef_pose_topic:=/eef_pose",
            "-p",
            "joint_states_topic:=/joint_states",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3.0)
        res = replay(bag, out / "timed_replay", rate=1.0)
    finally:
        node.terminate()
        node.wait(10)
    lat = res["latency_ms"]
    print(
        f"[6/6] ROS 2: {res['images_published']} frames played at 1x into para_policy: "
        f"{res['images_answered']} answered, {res['dropped']} dropped; end-to-end latency "
        f"median {lat.get('median', float('nan')):.2f} ms, p99 "
        f"{lat.get('p99', float('nan')):.2f} ms"
    )
    return {
        "ros_frames": res["images_published"],
        "ros_dropped": res["dropped"],
        "ros_latency_ms_median": lat.get("median"),
        "ros_latency_ms_p99": lat.get("p99"),
    }


if __name__ == "__main__":
    sys.exit(main())
