"""A data source: a format plus its mapping (keys or topics, frames, calibration).

Every tool that reads episodes (`para-train`, `para-rotation-basis`, `para-replay-eval`,
`para-inspect`) takes the same options, built from the fields of `DataSource` by
`add_source_args` (each option is spelled `--image-topic` and `--image_topic`). The format is
guessed from what each path is unless `--format` names it:

    para-hdf5   this project's HDF5 demos (a `camera` group per demo; para-make-demos)
    libero      official LIBERO / robomimic HDF5 (camera from each demo's `model_file` MJCF)
    lerobot     a LeRobot v3.0 dataset folder (meta/info.json, parquet, mp4; --calibration)
    rosbag      rosbag2 .mcap/.db3 (Image or CompressedImage; poses from topics or /tf)
    folder      plain episode folders (PNG + states.npz)
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field

FORMATS = ("auto", "para-hdf5", "libero", "lerobot", "rosbag", "folder")


@dataclass(frozen=True)
class DataSource:
    format: str = field(default="auto", metadata={"help": "|".join(FORMATS)})
    # -- cameras and images (libero, lerobot) ---------------------------------------------
    camera: str = field(
        default="agentview",
        metadata={"help": "libero: the MJCF camera (images from obs/<camera>_rgb)"},
    )
    image_key: str = field(
        default="",
        metadata={
            "help": "libero: obs key of the images ('' = <camera>_rgb or <camera>_image); "
            "lerobot: video feature ('' = observation.images.image)"
        },
    )
    image_convention: str = field(
        default="auto",
        metadata={
            "help": "libero: auto (the file's macros_image_convention) | opengl (stored "
            "upside down) | opencv (upright)"
        },
    )
    task: str = field(
        default="",
        metadata={"help": "libero/lerobot: keep files or episodes whose task contains this"},
    )
    fps: float = field(default=20.0, metadata={"help": "libero: frame rate (no timestamps)"})
    calibration: str = field(
        default="",
        metadata={
            "help": "camera calibration JSON sidecar {K, T_world_cam[, image_size]}: "
            "required by lerobot; overrides the camera of other formats"
        },
    )
    # -- lerobot feature mapping ---------------------------------------------------------
    state_key: str = field(
        default="observation.state", metadata={"help": "lerobot: feature holding the EEF pose"}
    )
    eef_pos_index: str = field(
        default="0:3", metadata={"help": "lerobot: slice of state_key that is the EEF xyz (m)"}
    )
    eef_rot_index: str = field(
        default="3:6", metadata={"help": "lerobot: slice of state_key that is the EEF rotation"}
    )
    eef_rot: str = field(
        default="axis_angle",
        metadata={"help": "lerobot: axis_angle | quat_xyzw | quat_wxyz | euler_xyz (rad)"},
    )
    joints_key: str = field(
        default="observation.joint_state",
        metadata={"help": "lerobot: feature with joint positions ('' = none)"},
    )
    gripper_key: str = field(
        default="action", metadata={"help": "lerobot: feature holding the gripper command"}
    )
    gripper_index: int = field(
        default=-1, metadata={"help": "lerobot: index of the gripper in gripper_key"}
    )
    # -- rosbag2 -------------------------------------------------------------------------
    image_topic: str = field(
        default="/camera/image_raw",
        metadata={"help": "rosbag: sensor_msgs/Image or CompressedImage"},
    )
    camera_info_topic: str = field(
        default="/camera/camera_info", metadata={"help": "rosbag: sensor_msgs/CameraInfo"}
    )
    eef_pose_topic: str = field(
        default="/eef_pose",
        metadata={"help": "rosbag: geometry_msgs/PoseStamped (unused with --eef-frame)"},
    )
    joint_states_topic: str = field(
        default="/joint_states", metadata={"help": "rosbag: sensor_msgs/JointState"}
    )
    gripper_topic: str = field(
        default="/gripper_command",
        metadata={"help": "rosbag: std_msgs/Float64 gripper command (--gripper-from topic)"},
    )
    camera_pose_topic: str = field(
        default="/camera_pose",
        metadata={"help": "rosbag: geometry_msgs/PoseStamped world <- camera (optical axes)"},
    )
    world_frame: str = field(
        default="world", metadata={"help": "rosbag: TF frame of the world (/tf lookups)"}
    )
    eef_frame: str = field(
        default="",
        metadata={"help": "rosbag: TF frame of the EEF: poses from /tf instead of a topic"},
    )
    camera_frame: str = field(
        default="",
        metadata={
            "help": "rosbag: TF optical frame of the camera ('' = the image's frame_id); "
            "used when the bag has no camera pose topic"
        },
    )
    gripper_from: str = field(
        default="topic",
        metadata={
            "help": "rosbag: topic (the command topic) | fingers (closed while the finger "
            "joints close or stay closed, open while they open) | "
            "none (a constant 0.0, chosen explicitly)"
        },
    )
    finger_joints: str = field(
        default="panda_finger_joint1,panda_finger_joint2",
        metadata={"help": "rosbag: comma list of finger joint names (--gripper-from fingers)"},
    )
    finger_closed_below: float = field(
        default=0.9,
        metadata={
            "help": "rosbag: the first frame counts as closed below this fraction of the "
            "largest finger opening"
        },
    )
    joint_names: str = field(
        default="",
        metadata={"help": "rosbag: comma list of arm joints ('' = all but the finger joints)"},
    )
    camera_info_mismatch: str = field(
        default="refuse",
        metadata={"help": "rosbag: refuse | rescale K when CameraInfo size != image size"},
    )
    tolerance: float = field(
        default=0.02, metadata={"help": "rosbag: seconds between an image and its state"}
    )
    camera_pose: tuple = field(
        default=(),
        metadata={"help": "fixed camera pose x y z qx qy qz qw (world <- camera, OpenCV axes)"},
    )

    def __post_init__(self) -> None:
        choices = {
            "format": FORMATS,
            "image_convention": ("auto", "opengl", "opencv"),
            "eef_rot": ("axis_angle", "quat_xyzw", "quat_wxyz", "euler_xyz"),
            "gripper_from": ("topic", "fingers", "none"),
            "camera_info_mismatch": ("refuse", "rescale"),
        }
        for name, ok in choices.items():
            if getattr(self, name) not in ok:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be one of {', '.join(ok)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.camera_pose and len(self.camera_pose) != 7:
            raise ValueError("--camera-pose takes 7 numbers: x y z qx qy qz qw")

    def finger_joint_list(self) -> list[str]:
        return [n.strip() for n in self.finger_joints.split(",") if n.strip()]

    def joint_name_list(self) -> list[str]:
        return [n.strip() for n in self.joint_names.split(",") if n.strip()]


def parse_slice(text: str, what: str) -> slice:
    """'0:3' -> slice(0, 3); '6' -> slice(6, 7)."""
    try:
        if ":" in text:
            a, b = text.split(":")
            return slice(int(a) if a else None, int(b) if b else None)
        i = int(text)
        return slice(i, i + 1 if i != -1 else None)
    except ValueError:
        raise ValueError(f"{what}: expected a slice like 0:3, got {text!r}") from None


def add_source_args(parser: argparse.ArgumentParser) -> None:
    """The data-source options every tool shares (--image-topic and --image_topic alike)."""
    group = parser.add_argument_group(
        "data source (format + mapping; the same options in every tool)"
    )
    hints = typing.get_type_hints(DataSource)
    for f in dataclasses.fields(DataSource):
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        helptext = f.metadata.get("help", "")
        if f.name == "camera_pose":
            group.add_argument(
                *names, dest=f.name, type=float, nargs=7, metavar="V", default=None, help=helptext
            )
            continue
        tp = hints[f.name]
        group.add_argument(
            *names,
            dest=f.name,
            type=tp,
            default=None,
            help=f"{helptext} (default: {f.default!r})",
        )


def source_from_args(ns: argparse.Namespace) -> DataSource:
    values = {}
    for f in dataclasses.fields(DataSource):
        v = getattr(ns, f.name, None)
        if v is not None:
            values[f.name] = tuple(v) if f.name == "camera_pose" else v
    return DataSource(**values)


def describe(source: DataSource) -> str:
    """The options that differ from the defaults, as a command line fragment."""
    out = []
    for f in dataclasses.fields(DataSource):
        v = getattr(source, f.name)
        if v != f.default:
            flag = f"--{f.name.replace('_', '-')}"
            out.append(
                f"{flag} {' '.join(map(str, v))}" if f.name == "camera_pose" else f"{flag} {v}"
            )
    return " ".join(out) or "(defaults)"
