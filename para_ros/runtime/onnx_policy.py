"""OnnxPolicy: an exported PARA model behind ONNX Runtime, from observation to decoded chunk.

Pure (no rclpy, no torch). The node, the LIBERO evaluation and the rosbag replay all call
`OnnxPolicy.infer`, so they share one preprocessing and decode path with training
(`para_ros.core.image.prepare`, `para_ros.core.action_codec.decode_chunk`).

Observation (world frame of the PolicySpec, metres, radians, quaternions x y z w):
    image        (H, W, 3) uint8 upright RGB, any size (resized to the model input; K follows)
    K            (3, 3) intrinsics of `image` at its own size
    T_world_cam  (4, 4) camera -> world, OpenCV axes
    eef_pos      (3,) current EEF position (the start keypoint is its projection)
    gripper      the gripper command being executed (the last one sent; None before the first:
                 the contract's open value), gripper units; read only by models whose
                 contract `uses_gripper_state`
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from para_ros.core import geometry
from para_ros.core.action_codec import ActionChunk, Codecs, decode_chunk
from para_ros.core.contract import PolicySpec, SpecError
from para_ros.core.image import prepare
from para_ros.core.onnx_metadata import spec_from_metadata

DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
REQUIRED_OUTPUTS = ("voxel", "voxel_prob", "gripper_bin", "rotation_bin")


class ModelLoadError(RuntimeError):
    """The model file cannot be used: unreadable, no/invalid contract, wrong graph."""


class ObservationError(ValueError):
    """An observation cannot be turned into a trustworthy model input."""


@dataclass(frozen=True)
class Observation:
    image: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    eef_pos: np.ndarray
    gripper: float | None = None


@dataclass(frozen=True)
class PolicyResult:
    chunk: ActionChunk
    start_keypoint: np.ndarray  # (3,) (u px, v px, h m) fed to the model
    K_model: np.ndarray  # (3, 3) K at model-input resolution
    heatmap: np.ndarray | None  # (T, Hg, Wg) max-over-z voxel probability, when asked for
    preprocess_ms: float
    inference_ms: float
    decode_ms: float


class OnnxPolicy:
    def __init__(
        self, model_path: str, providers: Sequence[str] = DEFAULT_PROVIDERS, threads: int = 1
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelLoadError(
                "onnxruntime is not installed: pip install 'para_ros[cpu]' (or [gpu])"
            ) from exc
        self.model_path = str(model_path)
        available = ort.get_available_providers()
        unknown = [p for p in providers if p not in DEFAULT_PROVIDERS and p not in available]
        if unknown:
            raise ModelLoadError(
                f"unknown execution provider(s) {unknown}; this onnxruntime offers {available}"
            )
        wanted = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Busy-waiting worker threads steal the cores the ROS executor and camera need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(self.model_path, opts, providers=wanted)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelLoadError(
                f"cannot load ONNX model {self.model_path}: {type(exc).__name__}: {exc}"
            ) from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.spec: PolicySpec = spec_from_metadata(meta, source=self.model_path)
        except SpecError as exc:
            raise ModelLoadError(str(exc)) from exc
        # Providers actually in use: ORT silently falls back to CPU when CUDA/TensorRT are
        # listed but unusable (RECIPES), so never report the requested or available list.
        self.providers: list[str] = self.session.get_providers()
        self.requested_providers = list(providers)
        self._check_graph()
        self.codecs = Codecs.from_spec(self.spec)
        self.model_id = self.spec.model.model_id or self.model_path.rsplit("/", 1)[-1]

    def _check_graph(self) -> None:
        spec = self.spec
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        for name, dtype in (("image", "tensor(uint8)"), ("start_keypoint", "tensor(float)")):
            if name not in inputs:
                raise ModelLoadError(
                    f"{self.model_path}: graph has no input `{name}` (inputs: {sorted(inputs)})"
                )
            if inputs[name].type != dtype:
                raise ModelLoadError(
                    f"{self.model_path}: input `{name}` is {inputs[name].type}, expected {dtype}"
                )
        width = inputs["start_keypoint"].shape[-1]
        want = 4 if spec.uses_gripper_state else 3
        if width != want:
            raise ModelLoadError(
                f"{self.model_path}: input `start_keypoint` has {width} values per row, but "
                f"the PolicySpec says {want} (gripper_input="
                f"{spec.uses_gripper_state})"
            )
        shape = inputs["image"].shape
        if list(shape[1:]) != [spec.image.height, spec.image.width, 3]:
            raise ModelLoadError(
                f"{self.model_path}: input `image` has shape {shape}, but the PolicySpec says "
                f"[batch, {spec.image.height}, {spec.image.width}, 3]"
            )
        missing = [n for n in REQUIRED_OUTPUTS if n not in outputs]
        if missing:
            raise ModelLoadError(f"{self.model_path}: graph lacks output(s) {missing}")
        self.has_heatmap = "heatmap" in outputs

    # ---------------------------------------------------------------------------------
    def start_keypoint(
        self,
        eef_pos: np.ndarray,
        K_model: np.ndarray,
        T_world_cam: np.ndarray,
        gripper: float | None = None,
    ):
        """(u px, v px, h m[, gripper]) of the current EEF at model-input resolution."""
        uv, depth = geometry.project(np.asarray(eef_pos, dtype=np.float64), K_model, T_world_cam)
        if not depth > 0:
            raise ObservationError(
                f"the EEF {np.round(eef_pos, 3).tolist()} is behind the camera (depth "
                f"{float(depth):.3f} m): check camera_pose and the world frame"
            )
        start = [uv[0], uv[1], eef_pos[2]]
        if self.spec.uses_gripper_state:
            g = self.spec.gripper.open_value if gripper is None else float(gripper)
            if not np.isfinite(g):
                raise ObservationError(f"non-finite gripper state {g}")
            start.append(g)
        return np.array(start, dtype=np.float32)

    def infer(self, obs: Observation, with_heatmap: bool = False) -> PolicyResult:
        spec = self.spec
        for name in ("K", "T_world_cam", "eef_pos"):
            if not np.isfinite(getattr(obs, name)).all():
                raise ObservationError(f"non-finite values in {name}")
        t0 = time.perf_counter()
        image, K_model = prepare(obs.image, obs.K, (spec.image.height, spec.image.width))
        start = self.start_keypoint(obs.eef_pos, K_model, obs.T_world_cam, obs.gripper)
        feeds = {"image": np.ascontiguousarray(image)[None], "start_keypoint": start[None]}
        t1 = time.perf_counter()
        names = list(REQUIRED_OUTPUTS) + (["heatmap"] if with_heatmap and self.has_heatmap else [])
        outs = self.session.run(names, feeds)
        t2 = time.perf_counter()
        voxel, prob, gbin, rbin = (o[0] for o in outs[:4])
        chunk = decode_chunk(spec, self.codecs, voxel, prob, gbin, rbin, K_model, obs.T_world_cam)
        t3 = time.perf_counter()
        return PolicyResult(
            chunk=chunk,
            start_keypoint=start,
            K_model=K_model,
            heatmap=outs[4][0] if len(outs) > 4 else None,
            preprocess_ms=(t1 - t0) * 1e3,
            inference_ms=(t2 - t1) * 1e3,
            decode_ms=(t3 - t2) * 1e3,
        )

    def warmup(self, runs: int = 3) -> float:
        """Run the graph on a blank frame `runs` times; returns the last latency (ms)."""
        spec = self.spec
        start = [
            spec.image.width / 2,
            spec.image.height / 2,
            (spec.height.min + spec.height.max) / 2,
        ]
        if spec.uses_gripper_state:
            start.append(spec.gripper.open_value)
        feeds = {
            "image": np.zeros((1, spec.image.height, spec.image.width, 3), np.uint8),
            "start_keypoint": np.array([start], np.float32),
        }
        ms = 0.0
        for _ in range(runs):
            t0 = time.perf_counter()
            self.session.run(list(REQUIRED_OUTPUTS), feeds)
            ms = (time.perf_counter() - t0) * 1e3
        return ms
