"""OnnxPolicy: an exported PARA model behind ONNX Runtime, from observation to decoded chunk.

Pure (no rclpy, no torch). The node, the LIBERO evaluation and the rosbag replay all call
`OnnxPolicy.infer`, so they share one preprocessing and decode path with training
(`para_ros.core.image.prepare`, and the decoder of the contract's head family,
`para_ros.core.heads`): every architecture with a known head family runs unchanged.

Graph inputs: `image` always; `start_keypoint` when the graph has it; and each extra input
the contract declares (`model.extra_inputs`: camera_K, T_world_cam, eef_pos, gripper_state),
built from the Observation (contract.RUNTIME_INPUTS says shape, units and frame). A graph
input that is neither is refused at load time.

Observation (world frame of the PolicySpec, metres, radians, quaternions x y z w):
    image        (H, W, 3) uint8 upright RGB, any size (resized to the model input; K follows)
    K            (3, 3) intrinsics of `image` at its own size
    T_world_cam  (4, 4) camera -> world, OpenCV axes
    eef_pos      (3,) current EEF position (the start keypoint is its projection)
    gripper      the gripper command being executed (the last one sent; None before the first:
                 the contract's open value), gripper units; read only by models whose
                 contract `uses_gripper_state`

Providers: the requested list is filtered to what this onnxruntime offers, TensorRT and CUDA
get their options (`provider_options`: TensorRT engine + timing cache in `trt_cache_dir`, so
the first start builds the engine and later starts load it; fp16 on request; CUDA as the
fallback inside the session), and `.providers` is what the session actually runs
(`session.get_providers()`). When a GPU provider this build offers was requested but the
session runs on CPU (no GPU, missing CUDA/TensorRT libraries), a `ProviderFallbackWarning` is
issued and `.fallback` says why; with a CPU-only onnxruntime the GPU entries are skipped and
`.fallback` says so without a warning (the default provider list asks for GPUs everywhere).
IO binding (default: on when a GPU provider runs) keeps one preallocated input buffer per
input on the device: each frame is copied once, straight into it, and the small outputs are
bound to host memory.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from para_ros.core import geometry
from para_ros.core.action_codec import ActionChunk, Codecs
from para_ros.core.contract import RUNTIME_INPUTS, PolicySpec, SpecError
from para_ros.core.heads import head_for
from para_ros.core.image import prepare
from para_ros.core.onnx_metadata import spec_from_metadata

DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# where TensorRT engines are cached when no trt_cache_dir is given (env PARA_TRT_CACHE)
DEFAULT_TRT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "para_ros", "trt")


class ProviderFallbackWarning(RuntimeWarning):
    """A GPU execution provider was requested and offered, but the session runs on CPU."""


class ModelLoadError(RuntimeError):
    """The model file cannot be used: unreadable, no/invalid contract, wrong graph."""


class ObservationError(ValueError):
    """An observation cannot be turned into a trustworthy model input."""


@dataclass(frozen=True)
class Observation:
    """One frame's input to `OnnxPolicy.infer`."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, upright, rectified, any size
    K: np.ndarray  # (3, 3) pinhole intrinsics of `image` at its own size, px (skew-free)
    T_world_cam: np.ndarray  # (4, 4) camera-to-world, OpenCV optical axes, metres
    eef_pos: np.ndarray  # (3,) current EEF position, world frame, metres
    gripper: float | None = None  # gripper command being executed (training units); None: open


@dataclass(frozen=True)
class PolicyResult:
    chunk: ActionChunk
    start_keypoint: np.ndarray  # (3,) (u px, v px, h m) of the EEF (fed when the graph has it)
    K_model: np.ndarray  # (3, 3) K at model-input resolution
    heatmap: np.ndarray | None  # (T, Hg, Wg) max-over-z voxel probability, when asked for
    preprocess_ms: float
    inference_ms: float
    decode_ms: float


def provider_options(
    providers: Sequence[str],
    trt_cache_dir: str | None = None,
    fp16: bool = False,
    device_id: int = 0,
) -> list[tuple[str, dict]]:
    """(name, options) per provider for `InferenceSession(providers=...)`: TensorRT with a
    persistent engine and timing cache (built on the first start, loaded later; keyed by
    model, shapes, GPU and TensorRT version) and fp16 when asked; CUDA on `device_id`."""
    out: list[tuple[str, dict]] = []
    cache = trt_cache_dir or os.environ.get("PARA_TRT_CACHE") or DEFAULT_TRT_CACHE
    for name in providers:
        if name == "TensorrtExecutionProvider":
            # string values: ORT parses provider options from strings ("1"/"0" for flags)
            opts = {
                "device_id": str(device_id),
                "trt_engine_cache_enable": "1",
                "trt_engine_cache_path": cache,
                "trt_timing_cache_enable": "1",
                "trt_timing_cache_path": cache,
                "trt_fp16_enable": "1" if fp16 else "0",
            }
            out.append((name, opts))
        elif name == "CUDAExecutionProvider":
            out.append(
                (name, {"device_id": str(device_id), "cudnn_conv_algo_search": "HEURISTIC"})
            )
        else:
            out.append((name, {}))
    return out


class OnnxPolicy:
    """A PARA ONNX model and its PolicySpec (read from the file's metadata): image in, a
    decoded action chunk out, with the runtime inputs the contract declares filled in.

    Raises (constructor) ModelLoadError, naming the cause: onnxruntime missing, an unknown
    execution provider, a file ONNX Runtime cannot load, no or an invalid PolicySpec, an
    unknown head family, or a graph whose inputs and outputs disagree with the contract.
    """

    def __init__(
        self,
        model_path: str,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int = 1,
        *,
        fp16: bool | None = None,
        trt_cache_dir: str | None = None,
        io_binding: bool | None = None,
        device_id: int = 0,
    ):
        """fp16: TensorRT builds fp16 engines (None: env PARA_TRT_FP16=1); trt_cache_dir:
        engine cache (None: env PARA_TRT_CACHE or ~/.cache/para_ros/trt); io_binding: None =
        on when a GPU provider runs."""
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
        if fp16 is None:
            fp16 = os.environ.get("PARA_TRT_FP16", "") in ("1", "true", "yes")
        self.fp16 = bool(fp16) and "TensorrtExecutionProvider" in wanted
        if "TensorrtExecutionProvider" in wanted:
            cache = trt_cache_dir or os.environ.get("PARA_TRT_CACHE") or DEFAULT_TRT_CACHE
            os.makedirs(cache, exist_ok=True)
        with_opts = provider_options(wanted, trt_cache_dir, self.fp16, device_id)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Busy-waiting worker threads steal the cores the ROS executor and camera need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                self.model_path,
                opts,
                providers=[n for n, _ in with_opts],
                provider_options=[o for _, o in with_opts],
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelLoadError(
                f"cannot load ONNX model {self.model_path}: {type(exc).__name__}: {exc}"
            ) from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.spec: PolicySpec = spec_from_metadata(meta, source=self.model_path)
        except SpecError as exc:
            raise ModelLoadError(str(exc)) from exc
        try:
            self.head = head_for(self.spec)
        except SpecError as exc:
            raise ModelLoadError(f"{self.model_path}: {exc}") from exc
        # Providers actually in use: ORT silently falls back to CPU when CUDA/TensorRT are
        # listed but unusable (RECIPES), so never report the requested or available list.
        self.providers: list[str] = self.session.get_providers()
        self.requested_providers = list(providers)
        self.fallback = self._fallback(available)
        self._check_graph()
        gpu = bool(self.providers) and self.providers[0] in GPU_PROVIDERS
        self.io_binding = gpu if io_binding is None else bool(io_binding)
        self.device = ("cuda", device_id) if gpu else ("cpu", 0)
        self._bindings: dict[bool, object] = {}
        self._inputs: dict[str, object] = {}
        self._lock = threading.Lock()  # the bound buffers are shared: one call at a time
        if self.io_binding:
            self._setup_io_binding(ort)
        self.codecs = Codecs.from_spec(self.spec)
        self.model_id = self.spec.model.model_id or self.model_path.rsplit("/", 1)[-1]

    def _fallback(self, available: Sequence[str]) -> str:
        """Why the session does not run the first GPU provider requested ('' when it does or
        none was requested); warns when a GPU provider was offered but not taken."""
        asked = [p for p in self.requested_providers if p in GPU_PROVIDERS]
        if not asked or any(p in self.providers for p in asked):
            return ""
        offered = [p for p in asked if p in available]
        if not offered:
            return (
                f"requested {asked}, but this onnxruntime has no GPU providers (it offers "
                f"{list(available)}): install para_ros[gpu] (onnxruntime-gpu); running on "
                f"{self.providers}"
            )
        msg = (
            f"{self.model_path}: requested {offered}, which this onnxruntime offers, but the "
            f"session fell back to {self.providers} (no usable GPU, or the CUDA/cuDNN/"
            "TensorRT libraries are missing: see onnxruntime's log); inference runs on CPU"
        )
        warnings.warn(msg, ProviderFallbackWarning, stacklevel=3)
        return msg

    def _setup_io_binding(self, ort) -> None:
        """One preallocated buffer per input on the session's device (batch 1), updated in
        place each call; outputs bound to host memory (small)."""
        spec = self.spec
        dev, dev_id = self.device
        width = 4 if spec.uses_gripper_state else 3
        shapes = {"image": ((1, spec.image.height, spec.image.width, 3), np.uint8)}
        if self.has_start_keypoint:
            shapes["start_keypoint"] = ((1, width), np.float32)
        for inp in spec.model.extra_inputs:
            shapes[inp.name] = ((1, *inp.shape), np.dtype(inp.dtype))
        for name, (shape, dtype) in shapes.items():
            self._inputs[name] = ort.OrtValue.ortvalue_from_shape_and_type(
                shape, dtype, dev, dev_id
            )
        for heat in (False, True):
            b = self.session.io_binding()
            for name, value in self._inputs.items():
                b.bind_ortvalue_input(name, value)
            for name in self._output_names(heat):
                b.bind_output(name, "cpu")
            self._bindings[heat] = b

    def _output_names(self, with_heatmap: bool) -> list[str]:
        return list(self.head.outputs) + (["heatmap"] if with_heatmap and self.has_heatmap else [])

    def _run(
        self,
        image: np.ndarray,
        start: np.ndarray,
        with_heatmap: bool,
        extras: dict[str, np.ndarray] | None = None,
    ) -> list:
        """The graph on one (H, W, 3) uint8 image, its (3|4,) start keypoint and the declared
        extra inputs (per sample, no batch dimension)."""
        feeds = {"image": np.ascontiguousarray(image)[None]}
        if self.has_start_keypoint:
            feeds["start_keypoint"] = np.ascontiguousarray(start[None])
        for name, value in (extras or {}).items():
            feeds[name] = np.ascontiguousarray(value)[None]
        if not self.io_binding:
            return self.session.run(self._output_names(with_heatmap), feeds)
        with self._lock:
            for name, value in feeds.items():
                self._inputs[name].update_inplace(value)
            binding = self._bindings[with_heatmap]
            self.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()

    def _check_graph(self) -> None:
        spec = self.spec
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        declared = {i.name: i for i in spec.model.extra_inputs}
        # start_keypoint: the PARA conditioning, fed whenever the graph has it
        self.has_start_keypoint = "start_keypoint" in inputs
        expected = {"image": "tensor(uint8)", "start_keypoint": "tensor(float)"}
        expected.update(
            {
                n: f"tensor({'float' if i.dtype == 'float32' else i.dtype})"
                for n, i in declared.items()
            }
        )
        for name in ["image", *declared]:
            if name not in inputs:
                why = " (declared in `model.extra_inputs`)" if name in declared else ""
                raise ModelLoadError(
                    f"{self.model_path}: graph has no input `{name}`{why}; inputs: "
                    f"{sorted(inputs)}"
                )
        for name, node in inputs.items():
            if name not in expected:
                raise ModelLoadError(
                    f"{self.model_path}: graph input `{name}` is neither image, start_keypoint "
                    f"nor declared in the PolicySpec's `model.extra_inputs` (declared: "
                    f"{sorted(declared)}; the runtime supplies {sorted(RUNTIME_INPUTS)})"
                )
            if node.type != expected[name]:
                raise ModelLoadError(
                    f"{self.model_path}: input `{name}` is {node.type}, expected {expected[name]}"
                )
            if name in declared and list(node.shape[1:]) != list(declared[name].shape):
                raise ModelLoadError(
                    f"{self.model_path}: input `{name}` has shape {node.shape}, but "
                    f"`model.extra_inputs` says [batch, *{list(declared[name].shape)}]"
                )
        width = inputs["start_keypoint"].shape[-1] if self.has_start_keypoint else None
        want = 4 if spec.uses_gripper_state else 3
        if width is not None and width != want:
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
        missing = [n for n in self.head.outputs if n not in outputs]
        if missing:
            raise ModelLoadError(
                f"{self.model_path}: graph lacks output(s) {missing} of its head family "
                f"{self.head.name!r} (`model.head`)"
            )
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

    def extra_inputs(self, obs: Observation, K_model: np.ndarray) -> dict[str, np.ndarray]:
        """The contract's declared extra inputs, built from the observation (per sample)."""
        spec = self.spec
        out: dict[str, np.ndarray] = {}
        for inp in spec.model.extra_inputs:
            if inp.name == "camera_K":
                v = K_model
            elif inp.name == "T_world_cam":
                v = obs.T_world_cam
            elif inp.name == "eef_pos":
                v = obs.eef_pos
            elif inp.name == "gripper_state":
                g = spec.gripper.open_value if obs.gripper is None else float(obs.gripper)
                if not np.isfinite(g):
                    raise ObservationError(f"non-finite gripper state {g}")
                v = [g]
            else:  # the contract refuses unknown names; a new RUNTIME_INPUTS entry lands here
                raise ObservationError(f"no runtime source for declared input {inp.name!r}")
            out[inp.name] = np.asarray(v, dtype=np.dtype(inp.dtype)).reshape(inp.shape)
        return out

    def infer(self, obs: Observation, with_heatmap: bool = False) -> PolicyResult:
        """Run the model on one frame and decode its chunk by the contract's head family.

        The image is resized to the model input (spec.image) and K scaled with it; the
        chunk's positions are in the world frame of `obs.T_world_cam` (metres), quaternions
        x y z w, and its pixels at model-input resolution. with_heatmap: also return the
        (T, Hg, Wg) max-over-height voxel probabilities.

        Raises ObservationError (the node skips the frame) on non-finite K, pose, EEF or
        gripper, an EEF behind the camera, or a declared input with no runtime source.
        """
        spec = self.spec
        for name in ("K", "T_world_cam", "eef_pos"):
            if not np.isfinite(getattr(obs, name)).all():
                raise ObservationError(f"non-finite values in {name}")
        t0 = time.perf_counter()
        image, K_model = prepare(obs.image, obs.K, (spec.image.height, spec.image.width))
        start = self.start_keypoint(obs.eef_pos, K_model, obs.T_world_cam, obs.gripper)
        extras = self.extra_inputs(obs, K_model)
        t1 = time.perf_counter()
        outs = self._run(image, start, with_heatmap, extras)
        t2 = time.perf_counter()
        n = len(self.head.outputs)
        named = {k: o[0] for k, o in zip(self.head.outputs, outs[:n], strict=True)}
        chunk = self.head.decode(spec, self.codecs, named, K_model, obs.T_world_cam)
        t3 = time.perf_counter()
        return PolicyResult(
            chunk=chunk,
            start_keypoint=start,
            K_model=K_model,
            heatmap=outs[n][0] if len(outs) > n else None,
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
        image = np.zeros((spec.image.height, spec.image.width, 3), np.uint8)
        start_kp = np.array(start, np.float32)
        extras = {i.name: np.zeros(i.shape, np.dtype(i.dtype)) for i in spec.model.extra_inputs}
        ms = 0.0
        for _ in range(runs):
            t0 = time.perf_counter()
            self._run(image, start_kp, False, extras)
            ms = (time.perf_counter() - t0) * 1e3
        return ms
