"""rosbag2 (.mcap or .db3) <-> episodes, with the pure-Python `rosbags` library (no ROS needed).

One bag is one episode. Topic names are configurable (`BagTopics`). Messages used:

    image        sensor_msgs/Image           rgb8 | bgr8 | rgba8 | bgra8, upright
    camera_info  sensor_msgs/CameraInfo      K of the image (row-major k[9])
    eef_pose     geometry_msgs/PoseStamped   EEF pose in the world frame (xyzw quaternion)
    joint_states sensor_msgs/JointState      optional; positions in radians
    gripper      std_msgs/Float64            optional gripper command (else 0)
    camera_pose  geometry_msgs/PoseStamped   optional world <- camera (OpenCV axes); else the
                                             caller passes a fixed T_world_cam

Each image is paired with the state whose header stamp is nearest to the image's header stamp,
within `tolerance_s`; images without such a state are counted and skipped (`BagReport`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from para_ros.core.geometry import pose_matrix
from para_ros.core.image import ImageFormatError, to_rgb
from para_ros.data.episode import Episode, EpisodeError


@dataclass(frozen=True)
class BagTopics:
    image: str = "/camera/image_raw"
    camera_info: str = "/camera/camera_info"
    eef_pose: str = "/eef_pose"
    joint_states: str = "/joint_states"
    gripper: str = "/gripper_command"
    camera_pose: str = "/camera_pose"


REQUIRED = ("image", "camera_info", "eef_pose")


class BagError(EpisodeError):
    """A bag cannot be read completely or lacks what an episode needs."""


@dataclass
class BagReport:
    path: str
    images: int = 0
    paired: int = 0
    skipped_no_state: int = 0
    skipped_bad_image: int = 0
    messages: dict[str, int] = field(default_factory=dict)


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _nearest(stamps: np.ndarray, t: float) -> tuple[int, float]:
    k = int(np.searchsorted(stamps, t))
    best = min((c for c in (k - 1, k) if 0 <= c < len(stamps)), key=lambda c: abs(stamps[c] - t))
    return best, abs(stamps[best] - t)


def read_bag(
    path: str | Path,
    topics: BagTopics = BagTopics(),
    tolerance_s: float = 0.02,
    T_world_cam: np.ndarray | None = None,
    name: str = "",
) -> tuple[Episode, BagReport]:
    """Read one bag into an Episode. Raises BagError naming what is missing or unreadable."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    report = BagReport(path=str(path))
    series: dict[str, list] = {k: [] for k in BagTopics.__dataclass_fields__}
    wanted = {getattr(topics, k): k for k in BagTopics.__dataclass_fields__}
    try:
        with AnyReader([path], default_typestore=_typestore()) as reader:
            present = {c.topic for c in reader.connections}
            missing = [getattr(topics, k) for k in REQUIRED if getattr(topics, k) not in present]
            if missing:
                raise BagError(
                    f"{path}: missing topic(s) {missing}; the bag has {sorted(present)}"
                )
            conns = [c for c in reader.connections if c.topic in wanted]
            for conn, t_ns, raw in reader.messages(connections=conns):
                key = wanted[conn.topic]
                series[key].append((t_ns * 1e-9, reader.deserialize(raw, conn.msgtype)))
    except BagError:
        raise
    except Exception as exc:  # rosbags raises several types for truncated/corrupt files
        read = {k: len(v) for k, v in series.items() if v}
        raise BagError(
            f"{path}: cannot read the bag completely ({type(exc).__name__}: {exc}); "
            f"messages read before the error: {read}. No partial episode is returned."
        ) from exc
    report.messages = {k: len(v) for k, v in series.items()}
    if not series["camera_info"]:
        raise BagError(f"{path}: no CameraInfo on {topics.camera_info}")
    if T_world_cam is None and not series["camera_pose"]:
        raise BagError(
            f"{path}: no camera pose: record {topics.camera_pose} (PoseStamped, world <- "
            "camera) or pass T_world_cam"
        )

    def by_stamp(items):
        stamps = np.array([_stamp(m.header) for _, m in items])
        order = np.argsort(stamps, kind="stable")
        return stamps[order], [items[i][1] for i in order]

    pose_t, poses = by_stamp(series["eef_pose"])
    cam_t, cams = by_stamp(series["camera_pose"]) if series["camera_pose"] else (None, None)
    js_t, js = by_stamp(series["joint_states"]) if series["joint_states"] else (None, None)
    # std_msgs/Float64 has no header: paired by bag receive time with the image's receive time
    grip_t = np.array([t for t, _ in series["gripper"]])
    grip = [m.data for _, m in series["gripper"]]
    info = series["camera_info"][-1][1]
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)

    frames, pos, quat, grips, joints, times, Ts = [], [], [], [], [], [], []
    for t_rx, img in series["image"]:
        report.images += 1
        t = _stamp(img.header)
        k, dt = _nearest(pose_t, t)
        if dt > tolerance_s:
            report.skipped_no_state += 1
            continue
        try:
            data = np.frombuffer(img.data, np.uint8)
            channels = 4 if img.encoding in ("rgba8", "bgra8") else 3
            arr = data.reshape(img.height, img.step)[:, : img.width * channels]
            rgb = to_rgb(arr.reshape(img.height, img.width, channels), img.encoding)
        except (ImageFormatError, ValueError):
            report.skipped_bad_image += 1
            continue
        p = poses[k].pose
        frames.append(rgb)
        pos.append([p.position.x, p.position.y, p.position.z])
        quat.append([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w])
        times.append(t)
        if cams is not None:
            c = cams[_nearest(cam_t, t)[0]].pose
            Ts.append(
                pose_matrix(
                    [c.position.x, c.position.y, c.position.z],
                    [c.orientation.x, c.orientation.y, c.orientation.z, c.orientation.w],
                )
            )
        joints.append(np.asarray(js[_nearest(js_t, t)[0]].position) if js else np.zeros(0))
        grips.append(grip[_nearest(grip_t, t_rx)[0]] if grip else 0.0)
        report.paired += 1
    if not frames:
        raise BagError(
            f"{path}: none of {report.images} images has an EEF pose within {tolerance_s} s"
        )
    times_arr = np.asarray(times)
    ep = Episode(
        rgb=np.stack(frames),
        K=K,
        T_world_cam=np.stack(Ts) if Ts else np.asarray(T_world_cam, dtype=np.float64),
        eef_pos=np.asarray(pos, dtype=np.float64),
        eef_quat=np.asarray(quat, dtype=np.float64),
        gripper=np.asarray(grips, dtype=np.float64),
        joints=np.stack(joints) if joints and len(joints[0]) else np.zeros((len(frames), 0)),
        time=times_arr - times_arr[0],
        name=name or path.stem,
        meta={"t0": float(times_arr[0])},
    )
    return ep, report


def write_bag(
    path: str | Path,
    ep: Episode,
    topics: BagTopics = BagTopics(),
    t0: float = 1.7e9,
    world_frame: str = "world",
    camera_frame: str = "camera",
) -> Path:
    """Write an episode as a rosbag2 bag (.mcap if the path ends so, else sqlite3 .db3 folder
    naming). Messages are stamped t0 + time; the bag receive time equals the stamp."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = Path(path)
    ts = _typestore()
    M = ts.types
    plugin = StoragePlugin.MCAP if path.suffix == ".mcap" else StoragePlugin.SQLITE3
    out_dir = path.with_suffix("") if path.suffix in (".mcap", ".db3") else path
    Header, Time = M["std_msgs/msg/Header"], M["builtin_interfaces/msg/Time"]
    Pose, Point, Quat = (
        M["geometry_msgs/msg/Pose"],
        M["geometry_msgs/msg/Point"],
        M["geometry_msgs/msg/Quaternion"],
    )

    def header(t: float, frame: str):
        sec = int(t)
        return Header(stamp=Time(sec=sec, nanosec=round((t - sec) * 1e9)), frame_id=frame)

    def pose(T: np.ndarray):
        from scipy.spatial.transform import Rotation

        q = Rotation.from_matrix(T[:3, :3]).as_quat()
        return Pose(
            position=Point(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
            orientation=Quat(x=q[0], y=q[1], z=q[2], w=q[3]),
        )

    H, W = ep.image_hw
    with Writer(out_dir, version=9, storage_plugin=plugin) as w:
        c_img = w.add_connection(topics.image, "sensor_msgs/msg/Image", typestore=ts)
        c_info = w.add_connection(topics.camera_info, "sensor_msgs/msg/CameraInfo", typestore=ts)
        c_eef = w.add_connection(topics.eef_pose, "geometry_msgs/msg/PoseStamped", typestore=ts)
        c_js = w.add_connection(topics.joint_states, "sensor_msgs/msg/JointState", typestore=ts)
        c_grip = w.add_connection(topics.gripper, "std_msgs/msg/Float64", typestore=ts)
        c_cam = w.add_connection(topics.camera_pose, "geometry_msgs/msg/PoseStamped", typestore=ts)
        for i in range(len(ep)):
            t = t0 + float(ep.time[i])
            ns = round(t * 1e9)
            img = M["sensor_msgs/msg/Image"](
                header=header(t, camera_frame),
                height=H,
                width=W,
                encoding="rgb8",
                is_bigendian=0,
                step=W * 3,
                data=np.ascontiguousarray(ep.rgb[i]).reshape(-1),
            )
            K = ep.K_at(i)
            info = M["sensor_msgs/msg/CameraInfo"](
                header=header(t, camera_frame),
                height=H,
                width=W,
                distortion_model="plumb_bob",
                d=np.zeros(5),
                k=K.reshape(-1),
                r=np.eye(3).reshape(-1),
                p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
                binning_x=0,
                binning_y=0,
                roi=M["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                ),
            )
            T_eef = pose_matrix(ep.eef_pos[i], ep.eef_quat[i])
            eef = M["geometry_msgs/msg/PoseStamped"](
                header=header(t, world_frame), pose=pose(T_eef)
            )
            cam = M["geometry_msgs/msg/PoseStamped"](
                header=header(t, world_frame), pose=pose(ep.T_world_cam_at(i))
            )
            js = M["sensor_msgs/msg/JointState"](
                header=header(t, ""),
                name=[f"joint{j + 1}" for j in range(ep.joints.shape[1])],
                position=np.asarray(ep.joints[i], dtype=np.float64),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            grip = M["std_msgs/msg/Float64"](data=float(ep.gripper[i]))
            for conn, msg in (
                (c_info, info),
                (c_cam, cam),
                (c_eef, eef),
                (c_js, js),
                (c_grip, grip),
                (c_img, img),
            ):
                w.write(conn, ns, ts.serialize_cdr(msg, conn.msgtype))
    return out_dir
