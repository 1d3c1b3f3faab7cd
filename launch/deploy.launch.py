"""Deploy the PARA policy node (and, with sim:=true, the LIBERO bridge) on a ROS 2 install.

    ros2 launch para_ros deploy.launch.py                      # para_policy, shipped model
    ros2 launch para_ros deploy.launch.py model:=/path/model.onnx params_file:=my.yaml
    ros2 launch para_ros deploy.launch.py robot:=franka_realsense   # a robot profile
    ros2 launch para_ros deploy.launch.py sim:=true            # closed loop in LIBERO; exits
    ros2 launch para_ros deploy.launch.py sim:=true episodes:=10 camera_theta_deg:=10.0
    ros2 launch para_ros deploy.launch.py --show-args          # every argument, described

The arguments, nodes, parameter files and overrides come from `para_ros.deploy_plan`, the
module `para-deploy` (pip installs) reads too: both start identical nodes with identical
parameters. Lifecycle: when para_libero_bridge has run its episodes the launch shuts down (exit
code 0, or 1 when an episode could not run); when para_policy dies the launch stops the bridge
and exits with 1.
"""

import functools
import os

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from para_ros.deploy_plan import ARGUMENTS, node_environment, plan


class NodeFailed(RuntimeError):
    """A node of the deploy set exited with a non-zero code: ends the launch with code 1."""


def _on_exit(name, event, _context):
    if event.returncode != 0:
        # an exception raised while handling an event ends `ros2 launch` with exit code 1
        # after stopping the remaining processes (launch.LaunchService.run_async)
        raise NodeFailed(f"{name} exited with code {event.returncode}")
    return [EmitEvent(event=Shutdown(reason=f"{name} finished"))]


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
    env = node_environment(os.environ)
    actions = []
    for n in plan(values):  # PlanError: a bad argument ends the launch before any node starts
        node = Node(
            package="para_ros",
            executable=n.executable,
            name=n.name,
            output="screen",
            parameters=[*n.params_files, n.overrides],
            additional_env=env,
        )
        on_exit = functools.partial(_on_exit, n.name)
        actions += [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))]
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                for a in ARGUMENTS
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
