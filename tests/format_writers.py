"""Writers of the formats users already have, for tests: each file is made from generated
episodes in the layout its own tool writes (official LIBERO HDF5, LeRobot v3.0, rosbag2 as a
real arm records it), so the readers are tested without ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.data.episode import Episode

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
ARM = tuple(f"panda_joint{i}" for i in range(1, 8))


def finger_opening(gripper: np.ndarray) -> np.ndarray:
    """(N, 2) finger joint positions that follow the command one frame late (+1 closes)."""
    out = np.empty((len(gripper), 2))
    w = 0.04 if gripper[0] < 0 else 0.002
    for i, g in enumerate(gripper):
        out[i] = (w, w)
        target = 0.002 if g > 0 else 0.04
        w = w + np.clip(target - w, -0.015, 0.015)
    return out


def mjcf_for_camera(T_world_cam: np.ndarray, name: str = "agentview") -> str:
    """An MJCF scene whose camera `name` (inside a translated, rotated body) has this pose."""
    R_mj = T_world_cam[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    body_T = np.eye(4)
    body_T[:3, :3] = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    body_T[:3, 3] = [0.1, -0.2, 0.3]
    local = np.linalg.inv(body_T) @ np.block([[R_mj, T_world_cam[:3, 3:4]], [0, 0, 0, 1]])
    q = [float(x) for x in Rotation.from_matrix(local[:3, :3]).as_quat()]  # x y z w
    bq = Rotation.from_matrix(body_T[:3, :3]).as_quat()
    p, bp = [float(x) for x in local[:3, 3]], body_T[:3, 3]
    return (
        '<mujoco model="base">\n  <compiler angle="radian"/>\n  <worldbody>\n'
        '    <camera name="frontview" pos="1 0 1.48" quat="0.56 0.43 0.43 0.56"/>\n'
        f'    <body name="mount" pos="{bp[0]} {bp[1]} {bp[2]}" '
        f'quat="{bq[3]} {bq[0]} {bq[1]} {bq[2]}">\n'
        f'      <camera name="{name}" pos="{p[0]!r} {p[1]!r} {p[2]!r}" '
        f'quat="{q[3]!r} {q[0]!r} {q[1]!r} {q[2]!r}"/>\n'
        "    </body>\n  </worldbody>\n</mujoco>\n"
    )


def write_libero(path: Path, episodes: list[Episode], convention: str = "opengl") -> Path:
    """The layout of LIBERO's create_dataset.py (no camera group, images as rendered)."""
    import h5py

    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        if convention:
            data.attrs["macros_image_convention"] = convention
        data.attrs["problem_info"] = json.dumps({"language_instruction": episodes[0].language})
        data.attrs["env_name"] = "Libero_Tabletop_Manipulation"
        for k, ep in enumerate(episodes):
            g = data.create_group(f"demo_{k}")
            g.attrs["num_samples"] = len(ep)
            g.attrs["model_file"] = mjcf_for_camera(ep.T_world_cam_at(0))
            rgb = np.asarray(ep.rgb)
            g.create_dataset(
                "obs/agentview_rgb", data=rgb if convention == "opencv" else rgb[:, ::-1]
            )
            g.create_dataset("obs/ee_pos", data=ep.eef_pos)
            g.create_dataset("obs/ee_ori", data=Rotation.from_quat(ep.eef_quat).as_rotvec())
            g.create_dataset("obs/joint_states", data=np.zeros((len(ep), 7)))
            g.create_dataset("obs/gripper_states", data=finger_opening(ep.gripper) * [1, -1])
            actions = np.zeros((len(ep), 7))
            actions[:, 6] = ep.gripper
            g.create_dataset("actions", data=actions)
    return path


def write_calibration(path: Path, ep: Episode) -> Path:
    path.write_text(
        json.dumps({"K": ep.K_at(0).tolist(), "T_world_cam": ep.T_world_cam_at(0).tolist()})
    )
    return path


def write_lerobot(root: Path, episodes: list[Episode], fps: int = 20) -> Path:
    """A LeRobot v3.0 folder: one data parquet, one H.264 video for all episodes, episode
    metadata with from/to timestamps, tasks."""
    import av
    import pyarrow as pa
    import pyarrow.parquet as pq

    H, W = episodes[0].image_hw
    key = "observation.images.image"
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    vdir = root / "videos" / key / "chunk-000"
    vdir.mkdir(parents=True)
    info = {
        "codebase_version": "v3.0",
        "fps": fps,
        "robot_type": "panda",
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            key: {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channel"]},
            "observation.state": {"dtype": "float32", "shape": [8]},
            "observation.joint_state": {"dtype": "float32", "shape": [7]},
            "action": {"dtype": "float32", "shape": [7]},
            "timestamp": {"dtype": "float32", "shape": [1]},
            "frame_index": {"dtype": "int64", "shape": [1]},
            "episode_index": {"dtype": "int64", "shape": [1]},
            "index": {"dtype": "int64", "shape": [1]},
            "task_index": {"dtype": "int64", "shape": [1]},
        },
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    cols = {k: [] for k in ("observation.state", "observation.joint_state", "action")}
    cols.update({k: [] for k in ("timestamp", "frame_index", "episode_index", "index")})
    cols["task_index"] = []
    meta_rows = []
    with av.open(str(vdir / "file-000.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "10", "g": "2"}
        start = 0
        for e, ep in enumerate(episodes):
            n = len(ep)
            meta_rows.append(
                {
                    "episode_index": e,
                    "tasks": [ep.language],
                    "length": n,
                    "data/chunk_index": 0,
                    "data/file_index": 0,
                    "dataset_from_index": start,
                    "dataset_to_index": start + n,
                    f"videos/{key}/chunk_index": 0,
                    f"videos/{key}/file_index": 0,
                    f"videos/{key}/from_timestamp": start / fps,
                    f"videos/{key}/to_timestamp": (start + n) / fps,
                }
            )
            rot = Rotation.from_quat(ep.eef_quat).as_rotvec()
            fingers = finger_opening(ep.gripper) * [1, -1]
            for i in range(n):
                cols["observation.state"].append([*ep.eef_pos[i], *rot[i], *fingers[i]])
                cols["observation.joint_state"].append([0.0] * 7)
                cols["action"].append([0.0] * 6 + [float(ep.gripper[i])])
                cols["timestamp"].append(i / fps)
                cols["frame_index"].append(i)
                cols["episode_index"].append(e)
                cols["index"].append(start + i)
                cols["task_index"].append(0)
                frame = av.VideoFrame.from_ndarray(np.asarray(ep.rgb[i]), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            start += n
        for packet in stream.encode():
            out.mux(packet)
    vec = pa.list_(pa.float32())
    table = pa.table(
        {
            "observation.state": pa.array(cols["observation.state"], vec),
            "observation.joint_state": pa.array(cols["observation.joint_state"], vec),
            "action": pa.array(cols["action"], vec),
            "timestamp": pa.array(cols["timestamp"], pa.float32()),
            **{
                k: pa.array(cols[k], pa.int64())
                for k in ("frame_index", "episode_index", "index", "task_index")
            },
        }
    )
    pq.write_table(table, root / "data" / "chunk-000" / "file-000.parquet")
    pq.write_table(
        pa.Table.from_pylist(meta_rows),
        root / "meta" / "episodes" / "chunk-000" / "file-000.parquet",
    )
    pq.write_table(
        pa.table({"task_index": [0], "task": [episodes[0].language]}),
        root / "meta" / "tasks.parquet",
    )
    return root


def write_realsense_bag(
    path: Path,
    ep: Episode,
    t0: float = 1.76e9,
    image_lag_s: float = 0.004,
    info_hw: tuple[int, int] | None = None,
    image_type: str = "sensor_msgs/msg/CompressedImage",
    distortion: tuple = (0.0, 0.0, 0.0, 0.0, 0.0),
    distortion_model: str = "plumb_bob",
) -> Path:
    """A bag as a Panda + RealSense record it: CompressedImage JPEG, CameraInfo, joint states
    with finger joints, the EEF only in /tf (panda_link0 -> panda_hand_tcp), /tf_static
    world -> panda_link0, world -> camera_link -> camera_color_optical_frame. Images are
    stamped `image_lag_s` after the /tf sample of the same frame."""
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer

    from para_ros.data.rosbag_io import _typestore

    ts = _typestore()
    M = ts.types
    Header, Time = M["std_msgs/msg/Header"], M["builtin_interfaces/msg/Time"]
    V3, Q = M["geometry_msgs/msg/Vector3"], M["geometry_msgs/msg/Quaternion"]

    def header(t, frame):
        sec = int(t)
        return Header(stamp=Time(sec=sec, nanosec=round((t - sec) * 1e9)), frame_id=frame)

    def tfs(t, parent, child, T):
        q = Rotation.from_matrix(T[:3, :3]).as_quat()
        return M["geometry_msgs/msg/TransformStamped"](
            header=header(t, parent),
            child_frame_id=child,
            transform=M["geometry_msgs/msg/Transform"](
                translation=V3(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=Q(x=q[0], y=q[1], z=q[2], w=q[3]),
            ),
        )

    base = np.eye(4)
    base[:3, 3] = [-0.66, 0.0, 0.912]
    optical_in_link = np.eye(4)  # REP 103 camera_link (x forward) -> optical (z forward)
    optical_in_link[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    link = ep.T_world_cam_at(0) @ np.linalg.inv(optical_in_link)
    H, W = ep.image_hw
    iH, iW = info_hw or (H, W)
    K = ep.K_at(0) * [[iW / W], [iH / H], [1]]
    fingers = finger_opening(ep.gripper)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c_img = w.add_connection("/camera/color/image_raw/compressed", image_type, typestore=ts)
        c_info = w.add_connection(
            "/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts
        )
        c_js = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        c_tf = w.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=ts)
        c_static = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=ts)
        static = M["tf2_msgs/msg/TFMessage"](
            transforms=[
                tfs(t0, "world", "panda_link0", base),
                tfs(t0, "world", "camera_link", link),
                tfs(t0, "camera_link", "camera_color_optical_frame", optical_in_link),
            ]
        )
        w.write(c_static, round(t0 * 1e9), ts.serialize_cdr(static, c_static.msgtype))
        for i in range(len(ep)):
            t = t0 + float(ep.time[i])
            T_eef = np.eye(4)
            T_eef[:3, :3] = Rotation.from_quat(ep.eef_quat[i]).as_matrix()
            T_eef[:3, 3] = ep.eef_pos[i]
            tf = M["tf2_msgs/msg/TFMessage"](
                transforms=[tfs(t, "panda_link0", "panda_hand_tcp", np.linalg.inv(base) @ T_eef)]
            )
            js = M["sensor_msgs/msg/JointState"](
                header=header(t, ""),
                name=[*ARM, *FINGERS],
                position=np.r_[np.zeros(7), fingers[i]],
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            ti = t + image_lag_s
            if image_type.endswith("CompressedImage"):
                _ok, jpg = cv2.imencode(
                    ".jpg", np.asarray(ep.rgb[i])[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]
                )
                img = M["sensor_msgs/msg/CompressedImage"](
                    header=header(ti, "camera_color_optical_frame"),
                    format="rgb8; jpeg compressed bgr8",
                    data=jpg.reshape(-1),
                )
            else:
                img = M["std_msgs/msg/String"](data="not an image")
            info = M["sensor_msgs/msg/CameraInfo"](
                header=header(ti, "camera_color_optical_frame"),
                height=iH,
                width=iW,
                distortion_model=distortion_model,
                d=np.asarray(distortion, dtype=np.float64),
                k=K.reshape(-1),
                r=np.eye(3).reshape(-1),
                p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
                binning_x=0,
                binning_y=0,
                roi=M["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                ),
            )
            for conn, msg, tt in (
                (c_js, js, t),
                (c_tf, tf, t),
                (c_info, info, ti),
                (c_img, img, ti),
            ):
                w.write(conn, round(tt * 1e9), ts.serialize_cdr(msg, conn.msgtype))
    return path


REALSENSE_ARGS = [
    "--image-topic",
    "/camera/color/image_raw/compressed",
    "--camera-info-topic",
    "/camera/color/camera_info",
    "--eef-frame",
    "panda_hand_tcp",
    "--gripper-from",
    "fingers",
]
