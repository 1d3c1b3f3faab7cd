"""PolicySpec: the one contract between training and deployment (DESIGN §2).

Everything a deployed node needs to turn model outputs into robot commands travels in one
versioned, validated record. It is serialised as JSON in two places:

* the checkpoint folder (`config.json` beside `model.safetensors`), and
* the ONNX file's `metadata_props` under the key `para.policy_spec` (see `onnx_metadata`).

Conventions fixed by this contract (stated once, here):

* Image: uint8, NHWC, RGB, at `image.height` x `image.width`; normalisation is inside the graph.
* Pixel coordinates are continuous, x right / y down, with the image spanning [0, W) x [0, H):
  pixel (col, row) covers [col, col + 1). The GT cell of pixel u is floor(u * Wg / W).
* Camera: OpenCV pinhole (x right, y down, z forward); `T_world_cam` maps camera to world.
* Rotations: euler angles are scipy `Rotation.from_euler("xyz", ...)` (extrinsic x, y, z), in
  radians. Quaternion order is (x, y, z, w) on every interface (ROS and scipy); LIBERO and
  robosuite also report (x, y, z, w).
* Lengths in metres, times in seconds, angles in radians.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

SPEC_VERSION = 2
# 1: no `executor` (read with ExecutorSpec's defaults, said once per process); 2: `executor`
# (its speed bounds, added later, read with their defaults when absent, said once).
SUPPORTED_SPEC_VERSIONS = (1, 2)
EULER_CONVENTION = "xyz"  # scipy, extrinsic, radians
QUATERNION_ORDER = "xyzw"
ROTATION_MODES = ("pca1d", "euler", "kmeans")


class SpecError(ValueError):
    """A PolicySpec (or a part of it) is missing a key, has a wrong type or a bad value."""


def _fail(path: str, msg: str) -> SpecError:
    return SpecError(f"PolicySpec: `{path}`: {msg}")


@dataclass(frozen=True)
class ImageSpec:
    """Model input image: uint8 NHWC RGB at this resolution (normalised inside the graph)."""

    height: int = 224
    width: int = 224
    encoding: Literal["rgb8"] = "rgb8"
    layout: Literal["NHWC"] = "NHWC"

    def validate(self, path: str) -> None:
        for name in ("height", "width"):
            if getattr(self, name) <= 0:
                raise _fail(f"{path}.{name}", f"must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GridSpec:
    """Feature grid laid over the model input image (Hg rows x Wg columns)."""

    height: int = 56
    width: int = 56

    def validate(self, path: str) -> None:
        for name in ("height", "width"):
            if getattr(self, name) <= 0:
                raise _fail(f"{path}.{name}", f"must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class WindowSpec:
    """T predicted steps, `stride` recorded frames apart, `dt` seconds apart."""

    steps: int = 6
    stride: int = 5
    dt: float = 0.25

    def validate(self, path: str) -> None:
        if self.steps <= 0:
            raise _fail(f"{path}.steps", f"must be > 0, got {self.steps}")
        if self.stride <= 0:
            raise _fail(f"{path}.stride", f"must be > 0, got {self.stride}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise _fail(f"{path}.dt", f"must be a finite number of seconds > 0, got {self.dt}")


@dataclass(frozen=True)
class LinearBinsSpec:
    """`n_bins` equal bins over [min, max] (values outside are clipped to the end bins)."""

    n_bins: int = 32
    min: float = 0.0
    max: float = 1.0

    def validate(self, path: str) -> None:
        if self.n_bins <= 0:
            raise _fail(f"{path}.n_bins", f"must be > 0, got {self.n_bins}")
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.max > self.min):
            raise _fail(path, f"needs finite min < max, got min={self.min}, max={self.max}")


@dataclass(frozen=True)
class GripperSpec(LinearBinsSpec):
    """Gripper command bins. `closed_sign` = +1: larger values mean more closed (LIBERO: -1
    open, +1 closed); -1: larger values mean more open (e.g. a finger width in metres)."""

    closed_sign: int = 1

    @property
    def open_value(self) -> float:
        """The command that means fully open (the state before any command was sent)."""
        return self.min if self.closed_sign > 0 else self.max

    def validate(self, path: str) -> None:
        super().validate(path)
        if self.closed_sign not in (1, -1):
            raise _fail(f"{path}.closed_sign", f"must be +1 or -1, got {self.closed_sign}")


@dataclass(frozen=True)
class RotationSpec:
    """Rotation classification (euler angles: scipy "xyz", radians).

    pca1d:  bin of s = (wrap(euler - mean) . axis) over [pca_min, pca_max], `n_bins` bins.
    euler:  3 independent axes, `n_bins` bins each over [euler_min[k], euler_max[k]].
    kmeans: `centroids` (K x 3 euler) ; the class is the nearest centroid (geodesic).
    """

    mode: Literal["pca1d", "euler", "kmeans"] = "pca1d"
    n_bins: int = 48
    euler_convention: Literal["xyz"] = EULER_CONVENTION
    pca_mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    pca_axis: tuple[float, ...] = (0.0, 0.0, 1.0)
    pca_min: float = -math.pi
    pca_max: float = math.pi
    explained_variance_ratio: tuple[float, ...] = (1.0, 0.0, 0.0)
    euler_min: tuple[float, ...] = (-math.pi, -math.pi, -math.pi)
    euler_max: tuple[float, ...] = (math.pi, math.pi, math.pi)
    centroids: tuple[tuple[float, ...], ...] = ()

    @property
    def n_classes(self) -> int:
        """Width of the rotation head: logits per action token."""
        if self.mode == "euler":
            return 3 * self.n_bins
        if self.mode == "kmeans":
            return len(self.centroids)
        return self.n_bins

    def validate(self, path: str) -> None:
        if self.n_bins <= 0:
            raise _fail(f"{path}.n_bins", f"must be > 0, got {self.n_bins}")
        for name in ("pca_mean", "pca_axis", "euler_min", "euler_max"):
            if len(getattr(self, name)) != 3:
                raise _fail(f"{path}.{name}", f"expected 3 numbers, got {getattr(self, name)}")
        if self.mode == "pca1d":
            norm = math.sqrt(sum(a * a for a in self.pca_axis))
            if abs(norm - 1.0) > 1e-6:
                raise _fail(f"{path}.pca_axis", f"must be a unit vector, |axis| = {norm:.6g}")
            if not self.pca_max > self.pca_min:
                raise _fail(path, f"needs pca_min < pca_max, got {self.pca_min}, {self.pca_max}")
        elif self.mode == "euler":
            for k in range(3):
                if not self.euler_max[k] > self.euler_min[k]:
                    raise _fail(f"{path}.euler_max", f"axis {k}: needs euler_min < euler_max")
        elif self.mode == "kmeans":
            if len(self.centroids) < 1 or any(len(c) != 3 for c in self.centroids):
                raise _fail(f"{path}.centroids", "expected K >= 1 rows of 3 euler angles")


@dataclass(frozen=True)
class CameraSpec:
    """World frame and the training camera (pinhole, K at model-input resolution).

    Deployment takes K from CameraInfo (or the node's `camera_matrix` parameter), rescaled to
    the model input; it is never taken from here. `T_world_cam` ((4, 4), camera-to-world,
    OpenCV optical axes) is the node's default camera pose when neither `camera_pose` nor
    `camera_pose_topic` is set. Both document the training camera.
    """

    world_frame: str = "world"
    model: Literal["pinhole"] = "pinhole"
    K: tuple[tuple[float, ...], ...] = ()
    T_world_cam: tuple[tuple[float, ...], ...] = ()

    def validate(self, path: str) -> None:
        if not self.world_frame:
            raise _fail(f"{path}.world_frame", "must be a non-empty frame id")
        if self.K and (len(self.K) != 3 or any(len(r) != 3 for r in self.K)):
            raise _fail(f"{path}.K", "expected a 3x3 matrix (list of 3 rows)")
        if self.T_world_cam and (
            len(self.T_world_cam) != 4 or any(len(r) != 4 for r in self.T_world_cam)
        ):
            raise _fail(f"{path}.T_world_cam", "expected a 4x4 matrix (list of 4 rows)")


# Keys added to a section after spec_version 2 was first written: absent in older v2 files,
# where the default applies (every other key of a written spec is required).
_ADDED = {"absent_in_older_v2": True}


def _close(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


CONTROLLERS = ("reach_then_observe", "streaming")
# rad/s: the rotational speed bound of a contract that does not record one. A moderate wrist
# rate (a quarter turn in about 1.6 s), 40% of the Franka Emika Panda's Cartesian rotational
# velocity limit (2.5 rad/s): it stops a runaway rotation well short of the hardware's limit
# while a hand still turns at a usable pace.
DEFAULT_MAX_ANGULAR_SPEED_RPS = 1.0


def default_max_speed_mps(max_step_m: float, dt: float) -> float:
    """m/s: the translational speed bound of a contract that does not record one: the speed
    an executor limited to `max_step_m` metres per command moves at when frames come every
    `dt` seconds (the model's window.dt)."""
    return max_step_m / dt


@dataclass(frozen=True)
class ExecutorSpec:
    """How the model's chunks are executed: the setting it was evaluated with (its card).

    Deployment (the node, the in-process evaluation, the LIBERO bridge) uses these values
    unless a parameter overrides one explicitly.

    execute_step:   the chunk step (0 = the first future step, `window.stride` recorded frames
                    ahead) sent as the EEF target of each frame.
    max_step_m:     metres; largest translation of one command from the current EEF.
    stall_patience: StallGuard: still frames before later chunk steps are executed (0 = off).
    zero_rotation:  the executor keeps the start orientation (True) or executes the predicted
                    rotation (False).
    controller:     "reach_then_observe": each target is reached (teleport servo, 2 mm) before
                    the next frame is taken; the semantics of the LIBERO bridge's lock-step
                    mode; only `max_step_m` bounds a command.
                    "streaming": a tracking controller (e.g. a Cartesian target-frame
                    controller or a servo's pose tracking) moves toward the newest target
                    continuously; a command is also bounded by the speeds below times the time
                    since the previous command.
    max_speed_mps:  metres/second; streaming: largest translation of a command from the
                    current EEF per second since the previous command. None (an ExecutorSpec
                    outside a PolicySpec) = not recorded: a PolicySpec fills in
                    `default_max_speed_mps(max_step_m, window.dt)`, as it does for version-1
                    files and version-2 files written before this key existed.
    max_angular_speed_rps: radians/second; streaming: largest rotation of a command from the
                    current EEF orientation per second since the previous command; files
                    without it read DEFAULT_MAX_ANGULAR_SPEED_RPS (1.0).
    """

    execute_step: int = 0
    max_step_m: float = 0.05
    stall_patience: int = 0
    zero_rotation: bool = True
    controller: Literal["reach_then_observe", "streaming"] = "reach_then_observe"
    max_speed_mps: float | None = field(default=None, metadata=_ADDED)
    max_angular_speed_rps: float = field(default=DEFAULT_MAX_ANGULAR_SPEED_RPS, metadata=_ADDED)

    def validate(self, path: str) -> None:
        if self.execute_step < 0:
            raise _fail(f"{path}.execute_step", f"must be >= 0, got {self.execute_step}")
        if not (math.isfinite(self.max_step_m) and self.max_step_m > 0):
            raise _fail(f"{path}.max_step_m", f"must be metres > 0, got {self.max_step_m}")
        if self.stall_patience < 0:
            raise _fail(f"{path}.stall_patience", f"must be >= 0, got {self.stall_patience}")
        if self.controller not in CONTROLLERS:
            raise _fail(
                f"{path}.controller",
                f"expected one of {list(CONTROLLERS)}, got {self.controller!r}"
                f"{_close(str(self.controller), CONTROLLERS)}",
            )
        speed = self.max_speed_mps
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise _fail(
                f"{path}.max_speed_mps", f"must be a finite metres/second > 0, got {speed}"
            )
        w = self.max_angular_speed_rps
        if not (math.isfinite(w) and w > 0):
            raise _fail(
                f"{path}.max_angular_speed_rps", f"must be a finite radians/second > 0, got {w}"
            )

    def with_window(self, window: WindowSpec) -> ExecutorSpec:
        """This executor with an unrecorded max_speed_mps (None) filled in from `window`."""
        if self.max_speed_mps is not None:
            return self
        return dataclasses.replace(
            self, max_speed_mps=default_max_speed_mps(self.max_step_m, window.dt)
        )


@dataclass(frozen=True)
class TensorSpec:
    """One graph input/output: name, element type and shape (str entries are symbolic dims)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


# Head families: how the runtime turns a graph's outputs into world targets (the decoder
# table is `para_ros.core.heads.HEADS`, keyed by these names).
#   voxel_volume      outputs voxel (z, y, x) classes + gripper/rotation bins; decoded by
#                     lifting the cell centre's ray to the height-bin plane (DESIGN §4)
#   world_regression  outputs `position` (T, 3) world metres + gripper/rotation bins; the
#                     positions are used as they are (projected only for display/metrics)
HEAD_FAMILIES = ("voxel_volume", "world_regression")
DEFAULT_HEAD = "voxel_volume"  # the head of every model exported before `model.head` existed

# Graph inputs the runtime can supply from an Observation, beyond `image` and
# `start_keypoint`: name -> (dtype, per-sample shape, units, frame, meaning).
RUNTIME_INPUTS: dict[str, tuple[str, tuple[int, ...], str, str, str]] = {
    "camera_K": ("float32", (3, 3), "px", "model_input_image", "intrinsics at model input"),
    "T_world_cam": ("float32", (4, 4), "m", "world<-camera", "camera pose, OpenCV axes"),
    "eef_pos": ("float32", (3,), "m", "world", "current EEF position"),
    "gripper_state": (
        "float32",
        (1,),
        "gripper",
        "",
        "gripper command being executed (the contract's open value before the first)",
    ),
}


@dataclass(frozen=True)
class GraphInputSpec:
    """A graph input the runtime feeds from the Observation (a key of RUNTIME_INPUTS); the
    graph takes it with a leading batch dimension: (batch, *shape)."""

    name: str
    dtype: str = "float32"
    shape: tuple[int, ...] = ()
    units: str = ""
    frame: str = ""

    @classmethod
    def known(cls, name: str) -> GraphInputSpec:
        dtype, shape, units, frame, _ = RUNTIME_INPUTS[name]
        return cls(name=name, dtype=dtype, shape=shape, units=units, frame=frame)

    def validate(self, path: str) -> None:
        if self.name not in RUNTIME_INPUTS:
            raise _fail(
                f"{path}.name",
                f"unknown runtime input {self.name!r}{_close(self.name, RUNTIME_INPUTS)}; "
                f"the runtime supplies {sorted(RUNTIME_INPUTS)}",
            )
        want = GraphInputSpec.known(self.name)
        for key in ("dtype", "shape", "units", "frame"):
            got, expected = getattr(self, key), getattr(want, key)
            if key == "shape":
                got, expected = tuple(got), tuple(expected)
            if got != expected:
                raise _fail(
                    f"{path}.{key}",
                    f"{self.name} is supplied with {key} {expected!r}, the spec says {got!r}",
                )


@dataclass(frozen=True)
class ModelSpec:
    """Architecture name (a key of the model registry), its hyper-parameters, the graph I/O,
    the head family the runtime decodes by, and the extra inputs the runtime must feed."""

    architecture: str = "para_dino_kv"
    model_id: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    head: str = field(default=DEFAULT_HEAD, metadata=_ADDED)
    extra_inputs: tuple[GraphInputSpec, ...] = field(default=(), metadata=_ADDED)

    def validate(self, path: str) -> None:
        if not self.architecture:
            raise _fail(f"{path}.architecture", "must be a non-empty registry name")
        if self.head not in HEAD_FAMILIES:
            raise _fail(
                f"{path}.head",
                f"unknown head family {self.head!r}{_close(self.head, HEAD_FAMILIES)}; "
                f"this build decodes {list(HEAD_FAMILIES)}",
            )
        seen = set()
        for i, inp in enumerate(self.extra_inputs):
            inp.validate(f"{path}.extra_inputs[{i}]")
            if inp.name in seen:
                raise _fail(f"{path}.extra_inputs[{i}].name", f"{inp.name!r} declared twice")
            seen.add(inp.name)


@dataclass(frozen=True)
class Provenance:
    dataset_id: str = ""
    git_commit: str = ""
    created: str = ""  # ISO 8601 UTC


@dataclass(frozen=True)
class PolicySpec:
    """The deployment contract of one trained PARA model. Build with `PolicySpec.from_dict`."""

    spec_version: int = SPEC_VERSION
    image: ImageSpec = field(default_factory=ImageSpec)
    grid: GridSpec = field(default_factory=GridSpec)
    window: WindowSpec = field(default_factory=WindowSpec)
    height: LinearBinsSpec = field(default_factory=LinearBinsSpec)  # world Z, metres
    gripper: GripperSpec = field(default_factory=GripperSpec)
    rotation: RotationSpec = field(default_factory=RotationSpec)
    camera: CameraSpec = field(default_factory=CameraSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    provenance: Provenance = field(default_factory=Provenance)
    quaternion_order: Literal["xyzw"] = QUATERNION_ORDER
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)

    def __post_init__(self) -> None:
        if isinstance(self.executor, ExecutorSpec) and self.executor.max_speed_mps is None:
            # an unrecorded speed bound follows this spec's window (frozen: set in place)
            self.window.validate("window")
            object.__setattr__(self, "executor", self.executor.with_window(self.window))
        self.validate()

    def validate(self) -> None:
        if self.spec_version not in SUPPORTED_SPEC_VERSIONS:
            raise _fail(
                "spec_version",
                f"unknown version {self.spec_version!r}; this build reads "
                f"{list(SUPPORTED_SPEC_VERSIONS)} (re-export the model or upgrade para_ros)",
            )
        for f in dataclasses.fields(self):
            part = getattr(self, f.name)
            if hasattr(part, "validate"):
                part.validate(f.name)
        if self.executor.execute_step >= self.window.steps:
            raise _fail(
                "executor.execute_step",
                f"{self.executor.execute_step} is outside the chunk of window.steps = "
                f"{self.window.steps}",
            )

    @property
    def uses_gripper_state(self) -> bool:
        """The model's start keypoint has a 4th value: the gripper command being executed
        (the last one sent; `gripper.open_value` before the first), in gripper units."""
        return bool(self.model.hyperparameters.get("gripper_input", False))

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> PolicySpec:
        if not isinstance(data, dict):
            raise SpecError(f"PolicySpec: expected a JSON object, got {type(data).__name__}")
        if "spec_version" not in data:
            raise _fail("spec_version", "missing key (required to interpret the rest)")
        version = data["spec_version"]
        if type(version) is not int or version not in SUPPORTED_SPEC_VERSIONS:
            raise _fail(
                "spec_version",
                f"unknown version {version!r}; this build reads {list(SUPPORTED_SPEC_VERSIONS)}",
            )
        if version == 1:
            data = upgrade_v1(data)
        else:
            _say_unrecorded_speeds(data.get("executor"))
        return _build(cls, data, "")

    @classmethod
    def from_json(cls, text: str) -> PolicySpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"PolicySpec: not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> PolicySpec:
        return dataclasses.replace(self, **changes)


_said_v1 = False
_said_speeds = False
_SPEED_KEYS = ("max_speed_mps", "max_angular_speed_rps")
_SPEED_DEFAULTS = (
    "max_speed_mps = max_step_m / window.dt, max_angular_speed_rps = "
    f"{DEFAULT_MAX_ANGULAR_SPEED_RPS} (the speed bounds of a streaming controller)"
)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 spec (no `executor`) as version 2, with ExecutorSpec's defaults (execute
    step 0, 5 cm steps, no StallGuard, zero rotation, reach_then_observe, max_speed_mps =
    max_step_m / window.dt, max_angular_speed_rps = DEFAULT_MAX_ANGULAR_SPEED_RPS); logged
    once per process."""
    global _said_v1
    if "executor" in data:
        raise _fail("executor", "unknown key in a spec_version 1 file (added in version 2)")
    defaults = {k: v for k, v in to_jsonable(ExecutorSpec()).items() if k != "max_speed_mps"}
    if not _said_v1:
        _said_v1 = True
        logging.getLogger("para_ros.contract").warning(
            "PolicySpec version 1 has no `executor`: using the defaults %s with %s (re-export "
            "with para-export to record the setting the model was evaluated with)",
            defaults,
            _SPEED_DEFAULTS,
        )
    return {**data, "spec_version": SPEC_VERSION, "executor": defaults}


def _say_unrecorded_speeds(executor: Any) -> None:
    """Log once per process that a version-2 `executor` written before the speed bounds
    existed is read with their defaults."""
    global _said_speeds
    if not isinstance(executor, dict) or all(k in executor for k in _SPEED_KEYS):
        return
    if not _said_speeds:
        _said_speeds = True
        logging.getLogger("para_ros.contract").warning(
            "PolicySpec `executor` records no %s: using %s (re-export with para-export to "
            "record them)",
            " / ".join(k for k in _SPEED_KEYS if k not in executor),
            _SPEED_DEFAULTS,
        )


# -- typed JSON loading with path-named errors -------------------------------------------


def parse(cls: type, data: Any, path: str = ""):
    """Build one part of the contract (e.g. RotationSpec) from JSON data, validated."""
    obj = _build(cls, data, path)
    if hasattr(obj, "validate"):
        obj.validate(path or cls.__name__)
    return obj


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        raise SpecError(f"PolicySpec: non-finite number {obj} cannot be serialised")
    return obj


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "list"
    if dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise _fail(path, f"expected one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        given = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(given) == 1:
            # an optional key: None is a default of the code, never a value of a written file
            return _convert(given[0], value, path)
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, path)
            except SpecError:
                continue
        raise _fail(path, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, f"expected a list, got {type(value).__name__}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {type(value).__name__}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if type(value) is not bool:
            raise _fail(path, f"expected a boolean, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if type(value) is not int:
            raise _fail(path, f"expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if type(value) not in (int, float):
            raise _fail(path, f"expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise _fail(path, f"expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {type(value).__name__} {value!r}")
        return value
    raise _fail(path, f"unsupported field type {tp!r}")  # a bug in this module, not the input


def _build(cls: type, data: Any, path: str) -> Any:
    where = path or "<root>"
    if not isinstance(data, dict):
        raise _fail(where, f"expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; expected keys {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if f.metadata.get("absent_in_older_v2"):
                continue  # written by an older v2 build: the default applies
            required = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            # Every key of a written spec is required: a missing key means a truncated or
            # hand-edited file, and defaults would silently change the decode.
            raise _fail(
                sub,
                "missing key"
                + (" (required)" if required else f" (expected {_type_name(hints[name])})"),
            )
        kwargs[name] = _convert(hints[name], data[name], sub)
    try:
        return cls(**kwargs)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise _fail(where, str(exc)) from exc
