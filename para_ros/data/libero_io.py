"""Official LIBERO / robomimic HDF5 datasets (LIBERO's `create_dataset.py`, robomimic's layout).

Read (one file = many demos; a folder = every *.hdf5 in it, filtered by `--task`):

    /data attrs                macros_image_convention "opengl" (stored as rendered: upside
                               down) or "opencv" (upright); problem_info (JSON: the language
                               instruction); env_args
    /data/demo_k attrs         model_file: the scene's MJCF XML (the camera comes from here)
    obs/<camera>_rgb           (N, H, W, 3) uint8 (LIBERO) or obs/<camera>_image (robomimic)
    obs/ee_pos                 (N, 3) EEF position, world frame, metres (LIBERO)
    obs/ee_ori                 (N, 3) EEF orientation as an axis-angle vector, radians (LIBERO)
    obs/robot0_eef_pos/_quat   the same in robomimic's keys, quaternion (x, y, z, w)
    obs/joint_states           (N, 7) arm joints, radians (robomimic: obs/robot0_joint_pos)
    obs/gripper_states         (N, 2) finger joint positions, metres (kept in meta)
    actions                    (N, 7) OSC deltas + gripper; gripper command = actions[:, 6],
                               -1 open, +1 closed

Conventions of the returned Episode: images upright RGB (flipped vertically when the file
says "opengl"; a file that does not say is refused unless --image-convention is given);
quaternions (x, y, z, w); metres, radians, seconds; time = k / fps (no timestamps are stored:
20 Hz, LIBERO's control rate).

Camera: no intrinsics or extrinsics are stored, so they are derived from the demo's MJCF:
the named camera's pose is composed through its parent bodies (pos + quat/axisangle/euler/
xyaxes/zaxis, MuJoCo's conventions, quaternions (w, x, y, z) there); MuJoCo's camera looks
down its -z with y up, so OpenCV axes are R·diag(1, -1, -1). fovy is the vertical field of
view in degrees, MuJoCo's default 45 when the camera and its defaults give none; K has
f = (H/2)/tan(fovy/2) for both axes and the principal point at the image centre (W/2, H/2).
Cameras that track a body (mode != fixed) are refused: their pose is not in the XML.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from para_ros.core.geometry import intrinsics
from para_ros.data.episode import Episode, EpisodeError

MUJOCO_DEFAULT_FOVY = 45.0
OPENCV_FROM_MUJOCO = np.diag([1.0, -1.0, -1.0])


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EpisodeError("reading HDF5 needs h5py: pip install 'para_ros[data]'") from exc
    return h5py


# -- MJCF camera ---------------------------------------------------------------------------


def _floats(el: ET.Element, key: str, n: int, where: str) -> np.ndarray | None:
    text = el.get(key)
    if text is None:
        return None
    try:
        v = np.array([float(x) for x in text.split()], dtype=np.float64)
    except ValueError:
        v = np.zeros(0)
    if len(v) != n:
        raise EpisodeError(f"{where}: attribute {key}={text!r} is not {n} numbers")
    return v


def _frame(el: ET.Element, angle_deg: bool, eulerseq: str, where: str) -> np.ndarray:
    """(4, 4) pose of an MJCF element in its parent's frame (MuJoCo's orientation rules)."""
    T = np.eye(4)
    pos = _floats(el, "pos", 3, where)
    if pos is not None:
        T[:3, 3] = pos
    scale = np.pi / 180.0 if angle_deg else 1.0
    if (q := _floats(el, "quat", 4, where)) is not None:
        R = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()  # MuJoCo: w x y z
    elif (aa := _floats(el, "axisangle", 4, where)) is not None:
        axis = aa[:3] / np.linalg.norm(aa[:3])
        R = Rotation.from_rotvec(axis * aa[3] * scale).as_matrix()
    elif (eu := _floats(el, "euler", 3, where)) is not None:
        # MuJoCo: lower case = axes that move with the frame (scipy: upper case)
        seq = eulerseq.swapcase()
        R = Rotation.from_euler(seq, eu * scale).as_matrix()
    elif (xy := _floats(el, "xyaxes", 6, where)) is not None:
        x = xy[:3] / np.linalg.norm(xy[:3])
        y = xy[3:] - x * (x @ xy[3:])
        y /= np.linalg.norm(y)
        R = np.stack([x, y, np.cross(x, y)], axis=1)
    elif (z := _floats(el, "zaxis", 3, where)) is not None:
        z = z / np.linalg.norm(z)
        R = Rotation.align_vectors([z], [[0.0, 0.0, 1.0]])[0].as_matrix()
    else:
        R = np.eye(3)
    T[:3, :3] = R
    return T


def camera_from_mjcf(
    xml: str, camera: str, image_hw: tuple[int, int], where: str = "model_file"
) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) at image_hw, T_world_cam (4, 4), OpenCV axes) of a fixed MJCF camera."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise EpisodeError(f"{where}: not valid MJCF XML ({exc})") from exc
    compiler = root.find("compiler")
    angle_deg = compiler is None or compiler.get("angle", "degree") != "radian"
    eulerseq = "xyz" if compiler is None else compiler.get("eulerseq", "xyz")
    world = root.find("worldbody")
    if world is None:
        raise EpisodeError(f"{where}: MJCF has no <worldbody>")
    parents = {child: parent for parent in root.iter() for child in parent}
    cams = [c for c in world.iter("camera") if c.get("name") == camera]
    if not cams:
        names = sorted(c.get("name", "?") for c in world.iter("camera"))
        raise EpisodeError(
            f"{where}: no camera named {camera!r} in the MJCF; cameras there: {names} "
            "(choose one with --camera)"
        )
    cam = cams[0]
    cwhere = f"{where}: camera {camera!r}"
    if cam.get("mode", "fixed") != "fixed":
        raise EpisodeError(
            f"{cwhere} has mode={cam.get('mode')!r}: its pose follows a body at run time and "
            "is not in the XML; only fixed cameras can be read"
        )
    for unsupported in ("focal", "focalpixel", "sensorsize", "principal", "principalpixel"):
        if cam.get(unsupported) is not None:
            raise EpisodeError(
                f"{cwhere} sets {unsupported}: only fovy cameras are supported; "
                "give the camera with --calibration FILE instead"
            )
    T = _frame(cam, angle_deg, eulerseq, cwhere)
    el = cam
    while (el := parents.get(el)) is not None and el is not world:
        if el.tag == "body":
            T = _frame(el, angle_deg, eulerseq, f"{where}: body {el.get('name')!r}") @ T
    T[:3, :3] = T[:3, :3] @ OPENCV_FROM_MUJOCO
    fovy = cam.get("fovy")
    if fovy is None:
        default_cam = root.find("default/camera")
        fovy = default_cam.get("fovy") if default_cam is not None else None
    fovy = MUJOCO_DEFAULT_FOVY if fovy is None else float(fovy)  # always degrees in MJCF
    H, W = image_hw
    f = (H / 2.0) / np.tan(np.radians(fovy) / 2.0)
    return intrinsics(f, f, W / 2.0, H / 2.0), T


# -- files ---------------------------------------------------------------------------------


def is_libero_file(path: Path) -> bool:
    """An HDF5 file in the official layout: demos with `model_file` and no `camera` group."""
    try:
        h5py = _h5py()
        with h5py.File(path, "r") as f:
            if "data" not in f or not len(f["data"]):
                return False
            g = f["data"][next(iter(f["data"]))]
            return "camera" not in g and ("model_file" in g.attrs or "ee_pos" in g.get("obs", {}))
    except (OSError, EpisodeError):
        return False


def _demo_order(names) -> list[str]:
    return sorted(
        names, key=lambda k: (int(k.split("_")[-1]) if k.split("_")[-1].isdigit() else 0, k)
    )


def _language(data, path: Path) -> str:
    try:
        info = json.loads(data.attrs.get("problem_info", "{}"))
        return str(info.get("language_instruction", ""))
    except (json.JSONDecodeError, TypeError):
        return path.stem.replace("_demo", "").replace("_", " ")


def read_libero(path: str | Path, source=None) -> list[Episode]:
    """Every demo of one official LIBERO / robomimic file (see the module docstring)."""
    from para_ros.data.source import DataSource

    source = source or DataSource()
    h5py = _h5py()
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EpisodeError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        if "data" not in f:
            raise EpisodeError(f"{path}: no /data group (expected LIBERO/robomimic demos)")
        data = f["data"]
        convention = source.image_convention
        if convention == "auto":
            convention = data.attrs.get("macros_image_convention", None)
            if isinstance(convention, bytes):
                convention = convention.decode()
            if convention not in ("opengl", "opencv"):
                raise EpisodeError(
                    f"{path}:/data: attribute macros_image_convention is "
                    f"{'missing' if convention is None else repr(convention)}; say how the "
                    "images are stored with --image-convention opengl (upside down, as "
                    "robosuite renders) or opencv (upright)"
                )
        language = _language(data, path)
        calib = None
        out = []
        for key in _demo_order(data):
            g = data[key]
            where = f"{path}:/data/{key}"
            if "obs" not in g:
                raise EpisodeError(f"{where}: no obs group")
            obs = g["obs"]
            keys = (
                [source.image_key]
                if source.image_key
                else [f"{source.camera}_rgb", f"{source.camera}_image"]
            )
            image_key = next((k for k in keys if k in obs), None)
            if image_key is None:
                raise EpisodeError(
                    f"{where}: no obs/{' or obs/'.join(keys)}; images there: "
                    f"{sorted(k for k in obs if obs[k].ndim == 4)} (choose with --camera or "
                    "--image-key)"
                )
            rgb = np.asarray(obs[image_key])
            if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
                raise EpisodeError(
                    f"{where}: obs/{image_key} is {rgb.shape} {rgb.dtype}; expected "
                    "(N, H, W, 3) uint8"
                )
            if convention == "opengl":
                rgb = np.ascontiguousarray(rgb[:, ::-1])
            n = len(rgb)
            pos, quat = _eef(obs, where)
            if "actions" not in g:
                raise EpisodeError(f"{where}: no actions (the gripper is actions[:, 6])")
            actions = np.asarray(g["actions"], dtype=np.float64)
            if actions.ndim != 2 or actions.shape[1] < 7:
                raise EpisodeError(
                    f"{where}: actions is {actions.shape}; expected (N, 7) with the gripper "
                    "command in column 6"
                )
            joints_key = next((k for k in ("joint_states", "robot0_joint_pos") if k in obs), None)
            joints = (
                np.asarray(obs[joints_key], dtype=np.float64) if joints_key else np.zeros((n, 0))
            )
            if source.calibration:
                if calib is None:
                    from para_ros.data.calibration import load_calibration

                    calib = load_calibration(source.calibration, rgb.shape[1:3])
                K, T = calib
            else:
                if "model_file" not in g.attrs:
                    raise EpisodeError(
                        f"{where}: no model_file attribute (the MJCF the camera is derived "
                        "from); give the camera with --calibration FILE"
                    )
                mf = g.attrs["model_file"]
                K, T = camera_from_mjcf(
                    mf.decode() if isinstance(mf, bytes) else str(mf),
                    source.camera,
                    rgb.shape[1:3],
                    f"{where} model_file",
                )
            meta = {"source": "libero", "file": str(path), "demo": key}
            if "gripper_states" in obs:
                meta["gripper_qpos"] = np.asarray(obs["gripper_states"], dtype=np.float64)
            if "states" in g:
                meta["sim_states"] = np.asarray(g["states"], dtype=np.float64)
            out.append(
                Episode(
                    rgb=rgb,
                    K=K,
                    T_world_cam=T,
                    eef_pos=pos,
                    eef_quat=quat,
                    gripper=actions[:, 6].copy(),
                    joints=joints,
                    time=np.arange(n) / float(source.fps),
                    name=f"{path.stem}/{key}",
                    language=language,
                    meta=meta,
                )
            )
    return out


def _eef(obs, where: str) -> tuple[np.ndarray, np.ndarray]:
    if "robot0_eef_pos" in obs and "robot0_eef_quat" in obs:
        pos = np.asarray(obs["robot0_eef_pos"], dtype=np.float64)
        quat = np.asarray(obs["robot0_eef_quat"], dtype=np.float64)
    elif "ee_pos" in obs and "ee_ori" in obs:
        pos = np.asarray(obs["ee_pos"], dtype=np.float64)
        rotvec = np.asarray(obs["ee_ori"], dtype=np.float64)
        if rotvec.ndim != 2 or rotvec.shape[1] != 3:
            raise EpisodeError(
                f"{where}: obs/ee_ori is {rotvec.shape}; expected (N, 3) axis-angle"
            )
        quat = Rotation.from_rotvec(rotvec).as_quat()
    else:
        raise EpisodeError(
            f"{where}: no EEF pose: expected obs/ee_pos + obs/ee_ori (LIBERO) or "
            "obs/robot0_eef_pos + obs/robot0_eef_quat (robomimic)"
        )
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise EpisodeError(f"{where}: the EEF position is {pos.shape}; expected (N, 3) metres")
    return pos, quat


def find_libero_files(root: Path, task: str = "") -> list[Path]:
    files = sorted(p for p in root.rglob("*.hdf5") if task.lower() in p.stem.lower())
    if not files:
        raise EpisodeError(
            f"{root}: no *.hdf5 files" + (f" whose name contains {task!r}" if task else "")
        )
    return files
