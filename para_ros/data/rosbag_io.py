"""rosbag2 (.mcap or .db3) <-> episodes, with the pure-Python `rosbags` library (no ROS needed).

One bag is one episode. Topic names and TF frames are options (`BagTopics`, `BagOptions`; on
the command line the data-source options of `para_ros.data.source`). Messages read:

    image        sensor_msgs/Image             upright; the encodings of
                                               para_ros.core.image.ENCODINGS (colour, mono,
                                               YUV 4:2:2, Bayer, 8/16-bit) as cv_bridge
                                               converts them to rgb8
                 sensor_msgs/CompressedImage   JPEG or PNG (decoded with OpenCV), e.g. format
                                               "rgb8; jpeg compressed bgr8" as image_transport
                                               and RealSense drivers record it
    camera_info  sensor_msgs/CameraInfo        K (row-major k[9]) of the image; its size must
                                               match each image (or --camera-info-mismatch
                                               rescale scales K, counted in the report)
    eef_pose     geometry_msgs/PoseStamped     EEF pose in the world frame, or, with
                                               --eef-frame, /tf + /tf_static (tf2_msgs/
                                               TFMessage): world_frame <- eef_frame
    joint_states sensor_msgs/JointState        optional; arm joints by name, radians
    gripper      std_msgs/Float64 (Float32)    the gripper command (--gripper-from topic), or
                                               the finger joints of joint_states (--gripper-from
                                               fingers: +1 closed from the frame the fingers
                                               start closing until they start opening, see
                                               `gripper_from_fingers`). A bag without the
                                               chosen source is refused: the gripper is never
                                               made up (`none` = 0.0, explicitly).
    camera_pose  geometry_msgs/PoseStamped     optional world <- camera (OpenCV optical axes);
                                               else a fixed T_world_cam from the caller, else
                                               /tf: world_frame <- camera_frame (default the
                                               image's frame_id, an optical frame)

Conventions: quaternions (x, y, z, w) as ROS sends them; metres, radians; time in seconds from
the first image. Each image is paired with the state whose header stamp is nearest to the
image's header stamp, within `tolerance_s`; /tf poses are interpolated at the image stamp
(`para_ros.core.tf_buffer`: translation linear, rotation slerp, as tf2 does) and images outside
the recorded /tf span of an edge on the way by more than tolerance_s are skipped. Skipped
images are counted by reason (`BagReport`). Every topic's type is checked: a wrong one is an
error naming the topic, the type found and the types accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from para_ros.core.geometry import pose_matrix, scale_intrinsics
from para_ros.core.image import ImageFormatError, decode_compressed, image_msg_to_rgb
from para_ros.core.plausibility import check_distortion, needs_rectification
from para_ros.core.rectify import Calibration, Rectifier
from para_ros.core.tf_buffer import (
    EXTRAPOLATION,
    TfBuffer,
    TfError,
    TfLookupError,
    add_tf_message,
)
from para_ros.data.episode import Episode, EpisodeError


@dataclass(frozen=True)
class BagTopics:
    image: str = "/camera/image_raw"
    camera_info: str = "/camera/camera_info"
    eef_pose: str = "/eef_pose"
    joint_states: str = "/joint_states"
    gripper: str = "/gripper_command"
    camera_pose: str = "/camera_pose"


@dataclass(frozen=True)
class BagOptions:
    """How poses, joints and the gripper are taken from a bag (see the module docstring)."""

    world_frame: str = "world"
    eef_frame: str = ""  # non-empty: the EEF pose comes from /tf
    camera_frame: str = ""  # '' = the image's frame_id
    gripper_from: str = "topic"  # topic | fingers | none (explicit constant 0.0)
    finger_joints: tuple = ("panda_finger_joint1", "panda_finger_joint2")
    finger_closed_below: float = 0.9
    joint_names: tuple = ()  # () = every joint but the finger joints, in message order
    camera_info_mismatch: str = "refuse"  # refuse | rescale


TF_TOPICS = ("/tf", "/tf_static")
ACCEPTED = {
    "image": ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"),
    "camera_info": ("sensor_msgs/msg/CameraInfo",),
    "eef_pose": ("geometry_msgs/msg/PoseStamped",),
    "joint_states": ("sensor_msgs/msg/JointState",),
    "gripper": ("std_msgs/msg/Float64", "std_msgs/msg/Float32"),
    "camera_pose": ("geometry_msgs/msg/PoseStamped",),
    "tf": ("tf2_msgs/msg/TFMessage",),
    "tf_static": ("tf2_msgs/msg/TFMessage",),
}


class BagError(EpisodeError):
    """A bag cannot be read completely or lacks what an episode needs."""


@dataclass
class BagReport:
    path: str
    images: int = 0
    paired: int = 0
    skipped_no_state: int = 0
    skipped_bad_image: int = 0
    skipped_duplicate_stamp: int = 0
    undistorted: int = 0
    skipped_no_tf: int = 0
    rescaled_k: int = 0
    gripper_source: str = ""
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


def decode_image(msg, msgtype: str) -> np.ndarray:
    """(H, W, 3) uint8 upright RGB from a sensor_msgs Image or CompressedImage, converted as
    the policy node converts them (`para_ros.core.image`); ImageFormatError if refused."""
    if msgtype.endswith("CompressedImage"):
        return decode_compressed(bytes(msg.data), str(msg.format))
    return image_msg_to_rgb(msg)


def _tf_buffer(path: Path, tf_msgs: list, static_msgs: list) -> TfBuffer:
    """All of /tf and /tf_static in one buffer (no cache limit). A frame on both topics keeps
    its /tf samples (the statics are added first). BagError names a refused transform."""
    tf = TfBuffer(cache_s=math.inf)
    try:
        for msg in static_msgs:
            add_tf_message(tf, msg, static=True)
        for msg in tf_msgs:
            add_tf_message(tf, msg, static=False)
    except TfError as exc:
        raise BagError(f"{path}: {exc}") from exc
    return tf


def _check_types(path: Path, reader, wanted: dict[str, str]) -> None:
    for c in reader.connections:
        if c.topic in wanted:
            key = wanted[c.topic]
            if c.msgtype not in ACCEPTED[key]:
                raise BagError(
                    f"{path}: topic {c.topic} has type {c.msgtype}; the {key.replace('_', ' ')} "
                    f"topic must be {' or '.join(ACCEPTED[key])}"
                )


def read_bag(
    path: str | Path,
    topics: BagTopics = BagTopics(),
    tolerance_s: float = 0.02,
    T_world_cam: np.ndarray | None = None,
    name: str = "",
    options: BagOptions = BagOptions(),
) -> tuple[Episode, BagReport]:
    """Read one bag into an Episode. Raises BagError naming what is missing or unreadable."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    for key in ("eef_pose", "camera_pose"):
        if getattr(topics, key) in TF_TOPICS:
            flag = "--eef-frame" if key == "eef_pose" else "--camera-frame"
            raise BagError(
                f"{path}: {getattr(topics, key)} is a transform tree, not "
                f"{'an EEF' if key == 'eef_pose' else 'a camera'} pose topic (PoseStamped): "
                f"name the frame with {flag} "
                "(and --world-frame) instead"
            )
    report = BagReport(path=str(path))
    keys = (*BagTopics.__dataclass_fields__, "tf", "tf_static")
    series: dict[str, list] = {k: [] for k in keys}
    wanted = {getattr(topics, k): k for k in BagTopics.__dataclass_fields__}
    wanted.update({"/tf": "tf", "/tf_static": "tf_static"})
    image_type = ""
    try:
        with AnyReader([path], default_typestore=_typestore()) as reader:
            present = {c.topic for c in reader.connections}
            required = ["image", "camera_info"]
            if not options.eef_frame:
                required.append("eef_pose")
            missing = [getattr(topics, k) for k in required if getattr(topics, k) not in present]
            if missing:
                hints = []
                for key, flag in (
                    ("image", "--image-topic"),
                    ("camera_info", "--camera-info-topic"),
                ):
                    if getattr(topics, key) in missing:
                        cands = [c.topic for c in reader.connections if c.msgtype in ACCEPTED[key]]
                        hints.append(f"{flag} one of {cands}")
                if topics.eef_pose in missing and "/tf" in present:
                    hints.append("the EEF only in /tf? name its frame with --eef-frame")
                hint = f" ({'; '.join(hints)})" if hints else ""
                raise BagError(
                    f"{path}: missing topic(s) {missing}{hint}; the bag has {sorted(present)}"
                )
            if options.eef_frame and "/tf" not in present and "/tf_static" not in present:
                raise BagError(
                    f"{path}: --eef-frame {options.eef_frame} needs /tf or /tf_static; the bag "
                    f"has {sorted(present)}"
                )
            if options.gripper_from == "topic" and topics.gripper not in present:
                raise BagError(
                    f"{path}: no gripper command topic {topics.gripper}; name it with "
                    "--gripper-topic, or take the gripper from the finger joints with "
                    "--gripper-from fingers (the gripper is never assumed)"
                )
            _check_types(path, reader, wanted)
            conns = [c for c in reader.connections if c.topic in wanted]
            for conn, t_ns, raw in reader.messages(connections=conns):
                key = wanted[conn.topic]
                if key == "image":
                    image_type = conn.msgtype
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
    if not series["image"]:
        raise BagError(f"{path}: no images on {topics.image}")
    has_tf = bool(series["tf"] or series["tf_static"])
    tf = (
        _tf_buffer(path, [m for _, m in series["tf"]], [m for _, m in series["tf_static"]])
        if has_tf
        else None
    )
    camera_frame = options.camera_frame or series["image"][0][1].header.frame_id
    cam_from_tf = T_world_cam is None and not series["camera_pose"]
    if cam_from_tf and tf is None:
        raise BagError(
            f"{path}: no camera pose: record {topics.camera_pose} (PoseStamped, world <- "
            "camera), /tf_static with the camera's optical frame, or pass --camera-pose"
        )
    for frame, what in (
        (options.eef_frame, "--eef-frame"),
        (camera_frame if cam_from_tf else "", "the camera frame (--camera-frame)"),
    ):
        if frame and tf is not None and tf.newest_stamp(options.world_frame, frame) is None:
            raise BagError(
                f"{path}: {what} {frame!r} is not connected to --world-frame "
                f"{options.world_frame!r} in /tf + /tf_static; frames there: {tf.frames}"
            )

    def by_stamp(items):
        stamps = np.array([_stamp(m.header) for _, m in items])
        order = np.argsort(stamps, kind="stable")
        return stamps[order], [items[i][1] for i in order]

    pose_t, poses = by_stamp(series["eef_pose"]) if series["eef_pose"] else (None, None)
    cam_t, cams = by_stamp(series["camera_pose"]) if series["camera_pose"] else (None, None)
    js_t, js = by_stamp(series["joint_states"]) if series["joint_states"] else (None, None)
    info_t, infos = by_stamp(series["camera_info"])
    # std_msgs/Float64 has no header: paired by bag receive time with the image's receive time
    grip_t = np.array([t for t, _ in series["gripper"]])
    grip = [float(m.data) for _, m in series["gripper"]]
    fingers = list(options.finger_joints)
    if options.gripper_from == "fingers":
        if js is None:
            raise BagError(
                f"{path}: --gripper-from fingers needs {topics.joint_states} (JointState)"
            )
        absent = [f for f in fingers if f not in list(js[0].name)]
        if absent:
            raise BagError(
                f"{path}: finger joint(s) {absent} not in {topics.joint_states}; joints there: "
                f"{list(js[0].name)} (name them with --finger-joints)"
            )
    report.gripper_source = {
        "topic": f"command topic {topics.gripper}",
        "fingers": f"finger joints {fingers} of {topics.joint_states}",
        "none": "none: constant 0.0 (--gripper-from none)",
    }[options.gripper_from]

    def joint_vector(msg) -> tuple[np.ndarray, float]:
        names = list(msg.name)
        pos = np.asarray(msg.position, dtype=np.float64)
        want = list(options.joint_names) or [n for n in names if n not in fingers]
        missing_j = [n for n in want if n not in names]
        if missing_j:
            raise BagError(
                f"{path}: joint(s) {missing_j} not in {topics.joint_states}; joints there: "
                f"{names} (choose with --joint-names)"
            )
        arm = np.array([pos[names.index(n)] for n in want]) if names else pos
        opening = (
            float(sum(abs(pos[names.index(f)]) for f in fingers))
            if options.gripper_from == "fingers"
            else 0.0
        )
        return arm, opening

    def tf_at(frame: str, t: float) -> np.ndarray | None:
        """world <- frame at t from /tf, None when t is outside the span of an edge on the
        way by more than tolerance_s (the frames' connection was checked above)."""
        try:
            return tf.lookup(options.world_frame, frame, t, tolerance=tolerance_s)
        except TfLookupError as exc:
            if exc.category != EXTRAPOLATION:
                raise
            return None

    frames, pos, quat, grips, joints, times, Ts, Ks, openings = ([] for _ in range(9))
    for t_rx, img in series["image"]:
        report.images += 1
        t = _stamp(img.header)
        if options.eef_frame:
            T_eef = tf_at(options.eef_frame, t)
            T_cam = tf_at(camera_frame, t) if cam_from_tf and T_eef is not None else None
            if T_eef is None or (cam_from_tf and T_cam is None):
                report.skipped_no_tf += 1
                continue
        else:
            k, dt = _nearest(pose_t, t)
            if dt > tolerance_s:
                report.skipped_no_state += 1
                continue
            p = poses[k].pose
            T_eef = pose_matrix(
                [p.position.x, p.position.y, p.position.z],
                [p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w],
            )
        if cam_from_tf and not options.eef_frame:
            T_cam = tf_at(camera_frame, t)
            if T_cam is None:
                report.skipped_no_tf += 1
                continue
        try:
            rgb = decode_image(img, image_type)
        except (ImageFormatError, ValueError):
            report.skipped_bad_image += 1
            continue
        info = infos[_nearest(info_t, t)[0]]
        K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        hw = rgb.shape[:2]
        rescaled = False
        if info.height and info.width and (info.height, info.width) != hw:
            if options.camera_info_mismatch == "refuse":
                raise BagError(
                    f"{path}: {topics.camera_info} is {info.width}x{info.height} but the images "
                    f"on {topics.image} are {hw[1]}x{hw[0]}: K would put every label in the "
                    "wrong place; fix the calibration or pass --camera-info-mismatch rescale"
                )
            K = scale_intrinsics(K, (info.height, info.width), hw)
            rescaled = True
            report.rescaled_k += 1
        if needs_rectification(info.distortion_model, info.d):
            bad = check_distortion(info.distortion_model, info.d)
            if bad is not None:
                raise BagError(
                    f"{path}: {topics.camera_info}: {bad.reason}; PARA's camera is a pinhole: "
                    "record rectified images or a supported model"
                )
            cal = Calibration(
                width=hw[1],
                height=hw[0],
                model=info.distortion_model,
                d=tuple(float(x) for x in info.d),
                k=tuple(K.reshape(-1).tolist()),
                r=tuple(float(x) for x in info.r),
                # a rescaled K has no matching P: rectify to K itself
                p=(0.0,) * 12 if rescaled else tuple(float(x) for x in info.p),
            )
            rect = Rectifier.for_info(cal)  # the node's rectification (maps cached)
            rgb, K = rect.rectify(rgb), rect.K
            report.undistorted += 1
        from scipy.spatial.transform import Rotation

        frames.append(rgb)
        pos.append(T_eef[:3, 3].copy())
        quat.append(Rotation.from_matrix(T_eef[:3, :3]).as_quat())
        Ks.append(K)
        times.append(t)
        if T_world_cam is not None:
            Ts.append(np.asarray(T_world_cam, dtype=np.float64))
        elif cams is not None:
            c = cams[_nearest(cam_t, t)[0]].pose
            Ts.append(
                pose_matrix(
                    [c.position.x, c.position.y, c.position.z],
                    [c.orientation.x, c.orientation.y, c.orientation.z, c.orientation.w],
                )
            )
        else:
            Ts.append(T_cam)
        if js is not None:
            arm, opening = joint_vector(js[_nearest(js_t, t)[0]])
        else:
            arm, opening = np.zeros(0), 0.0
        joints.append(arm)
        openings.append(opening)
        if options.gripper_from == "topic":
            grips.append(grip[_nearest(grip_t, t_rx)[0]])
        else:
            grips.append(0.0)
        report.paired += 1
    if not frames:
        raise BagError(
            f"{path}: none of {report.images} images has an EEF pose within {tolerance_s} s "
            f"({report.skipped_no_tf} outside the /tf span, {report.skipped_bad_image} "
            "undecodable)"
        )
    # frames in stamp order; a repeated stamp keeps its first image
    order = np.argsort(np.asarray(times), kind="stable")
    t_sorted = np.asarray(times)[order]
    keep = order[np.concatenate([[True], np.diff(t_sorted) > 0])]
    report.skipped_duplicate_stamp = len(order) - len(keep)
    report.paired = len(keep)
    frames, pos, quat, grips, joints, Ks, Ts, openings, times = (
        [seq[i] for i in keep]
        for seq in (frames, pos, quat, grips, joints, Ks, Ts, openings, times)
    )
    if options.gripper_from == "fingers":
        grips = list(gripper_from_fingers(np.asarray(openings), options.finger_closed_below))
    times_arr = np.asarray(times)
    Ks_arr = np.stack(Ks)
    Ts_arr = np.stack(Ts)
    ep = Episode(
        rgb=np.stack(frames),
        K=Ks_arr[0] if np.allclose(Ks_arr, Ks_arr[0]) else Ks_arr,
        T_world_cam=Ts_arr[0] if np.allclose(Ts_arr, Ts_arr[0], atol=1e-12) else Ts_arr,
        eef_pos=np.asarray(pos, dtype=np.float64),
        eef_quat=np.asarray(quat, dtype=np.float64),
        gripper=np.asarray(grips, dtype=np.float64),
        joints=np.stack(joints) if joints and len(joints[0]) else np.zeros((len(frames), 0)),
        time=times_arr - times_arr[0],
        name=name or path.stem,
        meta={"t0": float(times_arr[0]), "gripper_source": report.gripper_source},
    )
    return ep, report


FINGER_MOTION_M = 5e-4


def gripper_from_fingers(opening: np.ndarray, closed_below: float = 0.9) -> np.ndarray:
    """(N,) gripper command (+1 closed, -1 open) from the (N,) summed finger opening (m).

    A command shows as finger motion one frame later: closed from a frame whose opening
    shrinks by more than 0.5 mm to the next frame, open from one where it grows by as much;
    otherwise the previous command holds (fingers stopped by a grasped object stay "closed").
    The first frame is closed when its opening is below `closed_below` of the largest."""
    o = np.asarray(opening, dtype=np.float64)
    out = np.empty(len(o))
    state = 1.0 if o[0] < closed_below * o.max() else -1.0
    d = np.append(np.diff(o), 0.0)
    for i in range(len(o)):
        if d[i] < -FINGER_MOTION_M:
            state = 1.0
        elif d[i] > FINGER_MOTION_M:
            state = -1.0
        out[i] = state
    return out


def options_from_source(source) -> tuple[BagTopics, BagOptions, np.ndarray | None]:
    """(topics, options, fixed T_world_cam or None) of a DataSource."""
    topics = BagTopics(
        image=source.image_topic,
        camera_info=source.camera_info_topic,
        eef_pose=source.eef_pose_topic,
        joint_states=source.joint_states_topic,
        gripper=source.gripper_topic,
        camera_pose=source.camera_pose_topic,
    )
    options = BagOptions(
        world_frame=source.world_frame,
        eef_frame=source.eef_frame,
        camera_frame=source.camera_frame,
        gripper_from=source.gripper_from,
        finger_joints=tuple(source.finger_joint_list()),
        finger_closed_below=source.finger_closed_below,
        joint_names=tuple(source.joint_name_list()),
        camera_info_mismatch=source.camera_info_mismatch,
    )
    T = None
    if source.camera_pose:
        v = np.asarray(source.camera_pose, dtype=np.float64)
        T = pose_matrix(v[:3], v[3:] / np.linalg.norm(v[3:]))
    elif source.calibration:
        from para_ros.data.calibration import load_calibration

        T = load_calibration(source.calibration)[1]
    return topics, options, T


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
