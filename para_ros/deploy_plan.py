"""The deploy node set, described once: launch arguments, nodes, parameter files and the
parameter overrides each argument makes.

Two front ends read this module and nothing else, so they start identical nodes with identical
parameters: `launch/deploy.launch.py` (`ros2 launch para_ros deploy.launch.py name:=value`) and
`para-deploy` (pip installs, where launch/launch_ros are not available: `--name value`).
Pure: no launch, no rclpy imports.

Argument values are text, as launch arguments are; an empty value leaves the parameter file's
value (config/deploy.yaml, config/libero_bridge.yaml) in force. Each value is converted to the
parameter's type here, with an error naming the argument and the expected type.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from para_ros.resources import config_file, model_file

POLICY = "para_policy"
BRIDGE = "para_libero_bridge"
# Robot profiles shipped in config/robots/ (one parameter file each, naming its drivers' docs)
ROBOTS = ("franka_realsense", "ur_realsense", "kinova_gen3_realsense")
# The profile whose drivers the bridge's mode:=driver simulates (its frame and topic names)
DRIVER_ROBOT = "franka_realsense"


@dataclass(frozen=True)
class LaunchArg:
    """One launch argument; `node`/`param`: the parameter it overrides ('' = plan logic)."""

    name: str
    default: str
    description: str
    kind: type = str
    node: str = ""
    param: str = ""


ARGUMENTS: tuple[LaunchArg, ...] = (
    LaunchArg(
        "model",
        "",
        "ONNX model exported by para-export ('' = the shipped "
        "models/para_libero_spatial_t0/model.onnx); its PolicySpec carries the executor",
    ),
    LaunchArg("params_file", "", "para_policy parameter YAML ('' = config/deploy.yaml)"),
    LaunchArg(
        "robot",
        "",
        "robot profile: the topic and frame names of a driver set, config/robots/<robot>.yaml "
        f"loaded after params_file ({', '.join(ROBOTS)}; '' = none)",
    ),
    LaunchArg(
        "bridge_params_file", "", "para_libero_bridge YAML ('' = config/libero_bridge.yaml)"
    ),
    LaunchArg(
        "sim",
        "false",
        "also start para_libero_bridge (LIBERO closed loop in lock-step); the launch exits "
        "when the bridge has run its episodes (non-zero if one could not run)",
        bool,
    ),
    LaunchArg(
        "use_sim_time",
        "false",
        "para_policy follows /clock; with sim:=true the bridge publishes the simulation clock",
        bool,
    ),
    LaunchArg(
        "execute_step",
        "",
        "chunk step sent as the EEF target ('' = the parameter file's, whose -1 means the "
        "model's executor)",
        int,
        POLICY,
        "execute_step",
    ),
    LaunchArg("episodes", "", "sim: episodes to run, then exit", int, BRIDGE, "episodes"),
    LaunchArg(
        "first_init",
        "",
        "sim: first official init state (episode k uses first_init + k)",
        int,
        BRIDGE,
        "first_init",
    ),
    LaunchArg("max_steps", "", "sim: policy steps per episode", int, BRIDGE, "max_steps"),
    LaunchArg(
        "results_path", "", "sim: results JSON written at the end", str, BRIDGE, "results_path"
    ),
    LaunchArg(
        "gif_path",
        "",
        "sim: GIF of the first episode with the predicted trajectory",
        str,
        BRIDGE,
        "gif_path",
    ),
    LaunchArg(
        "camera_theta_deg",
        "",
        "sim, viewpoint OOD: camera orbit off-axis angle, degrees",
        float,
        BRIDGE,
        "camera_theta_deg",
    ),
    LaunchArg(
        "camera_phi_deg",
        "",
        "sim, viewpoint OOD: orbit azimuth, degrees",
        float,
        BRIDGE,
        "camera_phi_deg",
    ),
    LaunchArg(
        "shift_dx",
        "",
        "sim, position OOD: object shift along world x, metres",
        float,
        BRIDGE,
        "shift_dx",
    ),
    LaunchArg(
        "shift_dy",
        "",
        "sim, position OOD: object shift along world y, metres",
        float,
        BRIDGE,
        "shift_dy",
    ),
    LaunchArg(
        "mode",
        "",
        "sim: lockstep (each target reached before the next frame), realtime, or driver (the "
        f"bridge publishes what the {DRIVER_ROBOT} profile's drivers publish, /tf, a compressed "
        "camera, on simulation time; para_policy gets that profile and use_sim_time)",
        str,
        BRIDGE,
        "mode",
    ),
)
BY_NAME = {a.name: a for a in ARGUMENTS}

# Set for each node unless the caller's environment already sets it: 448 px RGB frames exceed
# Fast DDS's default shared-memory segment and fall back to lossy fragmented UDP (RECIPES).
NODE_ENV = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}


class PlanError(ValueError):
    """A launch argument has a bad value, or a file it names does not exist."""


@dataclass(frozen=True)
class NodeLaunch:
    """One node to start: executable (lib/para_ros, `ros2 run`), Python module (pip),
    parameter file and the typed overrides applied after it."""

    name: str
    executable: str
    module: str
    params_file: str
    overrides: dict = field(default_factory=dict)
    profile_file: str = ""  # a robot profile, loaded after params_file ('' = none)

    @property
    def params_files(self) -> list[str]:
        return [self.params_file] + ([self.profile_file] if self.profile_file else [])

    def ros_args(self) -> list[str]:
        """The node's command-line ROS arguments (para-deploy), as launch_ros passes them."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for path in self.params_files:
            args += ["--params-file", path]
        for k, v in self.overrides.items():
            args += ["-p", f"{k}:={yaml_scalar(v)}"]
        return args


NODES = {
    POLICY: ("para_policy", "para_ros.nodes.policy_node", "deploy.yaml"),
    BRIDGE: ("para_libero_bridge", "para_ros.nodes.libero_bridge", "libero_bridge.yaml"),
}


def yaml_scalar(value) -> str:
    """A parameter value as rcl parses `-p name:=value` (YAML): true/false, numbers with their
    type (20.0 stays a double), strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def parse_value(arg: LaunchArg, text: str):
    text = str(text).strip()
    try:
        if arg.kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return arg.kind(text)
    except ValueError:
        raise PlanError(
            f"launch argument {arg.name}:={text!r}: expected {arg.kind.__name__} "
            f"({arg.description})"
        ) from None


def plan(values: Mapping[str, str]) -> list[NodeLaunch]:
    """The nodes to start for these argument values (missing names take their defaults).

    Raises PlanError for an unknown argument, a value of the wrong type, or a model or
    parameter file that does not exist."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise PlanError(f"unknown launch argument(s) {unknown}; known: {sorted(BY_NAME)}")
    v = {a.name: str(values.get(a.name, a.default)).strip() for a in ARGUMENTS}
    sim = parse_value(BY_NAME["sim"], v["sim"])
    sim_time = parse_value(BY_NAME["use_sim_time"], v["use_sim_time"])
    if v["model"]:
        model = os.path.abspath(os.path.expanduser(v["model"]))
    else:
        try:
            model = str(model_file())
        except FileNotFoundError as exc:
            raise PlanError(f"no model given and {exc}") from None
    if not os.path.isfile(model):
        raise PlanError(f"model {model} does not exist (launch argument model)")
    files = {}
    for node, arg in ((POLICY, "params_file"), (BRIDGE, "bridge_params_file")):
        path = v[arg] or str(config_file(NODES[node][2]))
        if not os.path.isfile(path):
            raise PlanError(f"{arg} {path} does not exist")
        files[node] = os.path.abspath(path)
    overrides: dict[str, dict] = {
        POLICY: {"model_path": model, "use_sim_time": sim_time},
        # the bridge reads the model's executor (zero rotation) from the same file, and is
        # the clock when the policy runs on simulation time
        BRIDGE: {"model_path": model, "publish_clock": sim_time},
    }
    if sim and v["mode"] == "driver":
        # the bridge speaks as franka_ros2 + realsense2_camera on simulation time (/clock):
        # the policy reads it as on that robot (EEF and camera from TF, compressed camera)
        if v["robot"] not in ("", DRIVER_ROBOT):
            raise PlanError(
                f"mode:=driver simulates robot:={DRIVER_ROBOT}, got robot:={v['robot']!r}"
            )
        v["robot"] = DRIVER_ROBOT
        overrides[POLICY]["use_sim_time"] = overrides[BRIDGE]["publish_clock"] = True
    elif sim:
        overrides[POLICY]["camera_pose_topic"] = "camera_pose"  # the bridge's (orbited) camera
        if v["mode"] in ("", "lockstep"):
            # lock-step: the bridge reaches each target before the next frame
            overrides[POLICY]["controller"] = "reach_then_observe"
    for a in ARGUMENTS:
        if a.node and v[a.name]:
            overrides[a.node][a.param] = parse_value(a, v[a.name])
    names = [POLICY, BRIDGE] if sim else [POLICY]
    profile = {POLICY: robot_profile(v["robot"])}
    return [
        NodeLaunch(n, NODES[n][0], NODES[n][1], files[n], overrides[n], profile.get(n, ""))
        for n in names
    ]


def robot_profile(name: str) -> str:
    """The parameter file of robot profile `name` ('' for none); PlanError for an unknown one."""
    if not name:
        return ""
    if name not in ROBOTS:
        close = [r for r in ROBOTS if r.startswith(name)] or difflib.get_close_matches(
            name, ROBOTS, n=1
        )
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise PlanError(
            f"launch argument robot:={name!r} is not a profile{hint} (known: {ROBOTS})"
        )
    return str(config_file(f"robots/{name}.yaml"))


def node_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Variables to add to the nodes' environment (those the caller has not set)."""
    return {k: val for k, val in NODE_ENV.items() if k not in environ}


def executables() -> list[str]:
    """Every node executable the launch files can start (the install test checks each)."""
    return sorted(exe for exe, _module, _yaml in NODES.values())
