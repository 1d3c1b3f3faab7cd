"""Test support for the policy node: a known model, the node in its own process, a driver.

The driver is an rclpy node in the test process (its own Context, spun in a thread) that
publishes camera/robot inputs and records everything the policy node publishes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

from para_ros.core.contract import (
    CameraSpec,
    GridSpec,
    GripperSpec,
    ImageSpec,
    LinearBinsSpec,
    PolicySpec,
    RotationSpec,
    WindowSpec,
)
from para_ros.core.geometry import euler_to_quat_xyzw
from para_ros.data.synthetic import synthetic_camera
from para_ros.tools.synthetic_models import constant_policy_model

REPO = Path(__file__).resolve().parents[2]
H = W = 64
K, T_WORLD_CAM = synthetic_camera((H, W))
# 4 steps of known classes; every cell is on the table in front of the camera
VOXEL = np.array([[2, 8, 8], [3, 9, 7], [4, 10, 6], [5, 11, 5]])
PROB = np.array([0.9, 0.8, 0.7, 0.6])
GRIP = np.array([0, 2, 5, 7])
ROT = np.array([3, 4, 5, 6])
EEF_POS = np.array([0.0, 0.0, 0.95])  # current EEF, world metres


def make_test_spec(world_frame: str = "world", image: int = H) -> PolicySpec:
    """The contract of the constant test model; `image` px square input, grid = image / 4."""
    Kimg, _ = synthetic_camera((image, image))
    rot = RotationSpec(
        mode="pca1d",
        n_bins=12,
        pca_mean=(np.pi, 0.0, 0.2),
        pca_axis=(0.0, 0.0, 1.0),
        pca_min=-1.5,
        pca_max=1.5,
        explained_variance_ratio=(1.0, 0.0, 0.0),
    )
    return PolicySpec(
        image=ImageSpec(height=image, width=image),
        grid=GridSpec(height=image // 4, width=image // 4),
        window=WindowSpec(steps=4, stride=3, dt=0.15),
        height=LinearBinsSpec(n_bins=8, min=0.8, max=1.1),
        gripper=GripperSpec(n_bins=8, min=-1.0, max=1.0),
        rotation=rot,
        camera=CameraSpec(
            world_frame=world_frame,
            K=tuple(map(tuple, Kimg.tolist())),
            T_world_cam=tuple(map(tuple, T_WORLD_CAM.tolist())),
        ),
    )


def write_model(path: Path, heavy_layers: int = 0, **spec_kwargs) -> Path:
    """The constant test model (see module doc) with `make_test_spec(**spec_kwargs)`."""
    model = constant_policy_model(
        make_test_spec(**spec_kwargs),
        VOXEL,
        PROB,
        GRIP,
        ROT,
        heavy_layers=heavy_layers,
        model_id=path.stem,
    )
    onnx.save(model, str(path))
    return path


def camera_pose_param() -> str:
    from scipy.spatial.transform import Rotation

    q = Rotation.from_matrix(T_WORLD_CAM[:3, :3]).as_quat()
    vals = [*T_WORLD_CAM[:3, 3].tolist(), *q.tolist()]
    return "camera_pose:=[" + ", ".join(repr(float(v)) for v in vals) + "]"


def node_command(model: Path, *params: str) -> list[str]:
    """The policy node's command line: config/deploy.yaml, `model`, then each `-p` param."""
    cmd = [
        sys.executable,
        "-m",
        "para_ros.nodes.policy_node",
        "--ros-args",
        "--params-file",
        str(REPO / "config" / "deploy.yaml"),
        "-p",
        f"model_path:={model}",
    ]
    for p in params:
        cmd += ["-p", p]
    return cmd


def start_node(model: Path, env: dict, *params: str, log: Path | None = None):
    cmd = node_command(
        model,
        camera_pose_param(),
        "max_step:=1.0",
        # commands equal the chunk's step (the streaming speed bound has tests of its own)
        "controller:=reach_then_observe",
        "diagnostics_period:=0.25",
        *params,
    )
    out = open(log, "w") if log else subprocess.PIPE
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
    )


def wait_for(pred, timeout: float, step=None) -> bool:
    """True once `pred()` holds (calling `step()` before each try), False after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if step:
            step()
        if pred():
            return True
        time.sleep(0.1)
    return False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Driver:
    """Publishes inputs to the node and records its outputs (thread-safe lists)."""

    def __init__(self, image_hw: tuple[int, int] = (H, W)):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, Vector3Stamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import Float64

        from para_ros.msg import PolicyAction

        self.image_hw = image_hw
        self.K = synthetic_camera(image_hw)[0]
        self._frames: dict[tuple[int, int], bytes] = {}
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node(f"driver_{os.getpid()}", context=self.ctx)
        qos = QoSProfile(depth=50)
        self.pub_img = self.node.create_publisher(Image, "image", qos)
        self.pub_info = self.node.create_publisher(CameraInfo, "camera_info", qos)
        self.pub_js = self.node.create_publisher(JointState, "joint_states", qos)
        self.pub_eef = self.node.create_publisher(PoseStamped, "eef_pose", qos)
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CompressedImage

        self.pub_jpeg = self.node.create_publisher(CompressedImage, "image/compressed", qos)
        self.pub_clock = self.node.create_publisher(Clock, "/clock", qos)
        self.CompressedImage, self.Clock = CompressedImage, Clock
        self.lock = threading.Lock()
        self.got: dict[str, list] = defaultdict(list)
        for name, typ, topic in (
            ("action", PolicyAction, "/para_policy/action"),
            ("target", PoseStamped, "/para_policy/eef_target"),
            ("gripper", Float64, "/para_policy/gripper_command"),
            ("rotation", Vector3Stamped, "/para_policy/rotation"),
            ("diag", DiagnosticArray, "/diagnostics"),
            ("heatmap", Image, "/para_policy/heatmap"),
        ):
            self.node.create_subscription(typ, topic, self._recorder(name), qos)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.Image, self.CameraInfo, self.JointState = Image, CameraInfo, JointState
        self.PoseStamped = PoseStamped

    def _spin(self):
        while self.ctx.ok() and not self._stop:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                break

    def _recorder(self, name):
        def cb(msg):
            with self.lock:
                self.got[name].append((time.monotonic(), msg))

        return cb

    def count(self, name: str, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for t, _ in self.got[name] if t >= since)

    def messages(self, name: str, since: float = 0.0) -> list:
        with self.lock:
            return [m for t, m in self.got[name] if t >= since]

    def diag(self, model: str | Path = "") -> dict[str, str]:
        """Key/values of the newest /diagnostics of the node running `model` (any if '')."""
        with self.lock:
            msgs = [m for _, m in self.got["diag"]]
        for msg in reversed(msgs):
            kv = {x.key: x.value for x in msg.status[0].values}
            if not model or kv.get("model") == str(model):
                return kv
        return {}

    def diag_status(self, model: str | Path = "") -> tuple[int, str] | None:
        """(level, message) of the newest /diagnostics of the node running `model`."""
        with self.lock:
            msgs = [m for _, m in self.got["diag"]]
        for msg in reversed(msgs):
            st = msg.status[0]
            if not model or {x.key: x.value for x in st.values}.get("model") == str(model):
                return int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(
                    st.level
                ), st.message
        return None

    def stamp(self, offset: float = 0.0):
        from builtin_interfaces.msg import Time

        t = time.time() + offset
        return Time(sec=int(t), nanosec=int((t - int(t)) * 1e9))

    def send(
        self,
        *,
        image=True,
        info=True,
        eef=True,
        joints=True,
        encoding="rgb8",
        size=None,
        image_age=0.0,
        joint_value=0.1,
        info_size=None,
        stamp=None,
        info_k=None,
        info_d=None,
        info_p=None,
        eef_frame="world",
        eef_pos=None,
        eef_quat=None,
        compressed=None,
    ):
        """Publish one set of inputs, all stamped `stamp` (default: now). `compressed`
        ("jpeg"/"png") sends the image as a CompressedImage on image/compressed instead."""
        size = size or self.image_hw
        info_size = info_size or self.image_hw
        stamp = stamp or self.stamp()
        if info:
            self.pub_info.publish(self.camera_info(stamp, info_size, info_k, info_d, info_p))
        if joints:
            js = self.JointState()
            js.header.stamp = stamp
            js.name = [f"joint{i}" for i in range(7)]
            js.position = [joint_value] * 7
            self.pub_js.publish(js)
        if eef:
            e = self.PoseStamped()
            e.header.stamp = stamp
            e.header.frame_id = eef_frame
            pos = EEF_POS if eef_pos is None else np.asarray(eef_pos, float)
            e.pose.position.x, e.pose.position.y, e.pose.position.z = pos.tolist()
            q = euler_to_quat_xyzw(np.array([np.pi, 0.0, 0.0])) if eef_quat is None else eef_quat
            e.pose.orientation.x, e.pose.orientation.y = float(q[0]), float(q[1])
            e.pose.orientation.z, e.pose.orientation.w = float(q[2]), float(q[3])
            self.pub_eef.publish(e)
        if image and compressed:
            import cv2

            m = self.CompressedImage()
            m.header.stamp = self.stamp(-image_age) if image_age else stamp
            m.header.frame_id = "camera"
            m.format = f"rgb8; {compressed} compressed bgr8"
            frame = np.full((size[0], size[1], 3), 100, np.uint8)
            m.data = cv2.imencode(".jpg" if compressed == "jpeg" else ".png", frame)[1].tobytes()
            self.pub_jpeg.publish(m)
        elif image:
            ch = 1 if encoding == "mono8" else 3
            img = self.Image()
            img.header.stamp = self.stamp(-image_age) if image_age else stamp
            img.header.frame_id = "camera"
            img.height, img.width = size
            img.encoding = encoding
            img.step = size[1] * ch
            key = (size[0] * size[1], ch)
            if key not in self._frames:  # build each frame size once (bench: 448 at 30 Hz)
                self._frames[key] = np.full((size[0], size[1], ch), 100, np.uint8).tobytes()
            img.data = self._frames[key]
            self.pub_img.publish(img)

    def camera_info(self, stamp, size=None, k=None, d=None, p=None):
        m = self.CameraInfo()
        m.header.stamp = stamp
        m.height, m.width = size or self.image_hw
        m.k = (self.K.reshape(-1) if k is None else np.asarray(k, float)).tolist()
        if d is not None:
            m.distortion_model = "plumb_bob"
            m.d = list(map(float, d))
        if p is not None:
            m.p = list(map(float, p))
        return m

    def clock(self, t: float) -> None:
        from builtin_interfaces.msg import Time

        self.pub_clock.publish(self.Clock(clock=Time(sec=int(t), nanosec=int((t % 1) * 1e9))))

    def close(self):
        self._stop = True
        self.thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()
