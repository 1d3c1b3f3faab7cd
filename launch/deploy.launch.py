"""Deploy the PARA policy node (and, with sim:=true, the LIBERO bridge) on a ROS 2 install.

    ros2 launch para_ros deploy.launch.py model:=/path/model.onnx
    ros2 launch para_ros deploy.launch.py sim:=true bridge_params_file:=...  # shipped model

Arguments are only wired to parameters; the parameters themselves live in the YAML files
(config/deploy.yaml, config/libero_bridge.yaml). pip installs without `ros2 launch` use
`para-deploy`, which starts the same executables with the same YAML.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("para_ros")
    model = LaunchConfiguration("model")
    params_file = LaunchConfiguration("params_file")
    bridge_params = LaunchConfiguration("bridge_params_file")
    sim = LaunchConfiguration("sim")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "model",
                default_value=os.path.join(
                    share, "models", "para_libero_spatial_t0", "model.onnx"
                ),
                description="ONNX model exported by para-export (default: the shipped "
                "libero_spatial task-0 model)",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "deploy.yaml"),
                description="para_policy parameters",
            ),
            DeclareLaunchArgument(
                "bridge_params_file",
                default_value=os.path.join(share, "config", "libero_bridge.yaml"),
                description="para_libero_bridge parameters (sim:=true)",
            ),
            DeclareLaunchArgument(
                "sim", default_value="false", description="also start the LIBERO simulation bridge"
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="use /clock (set true with a bag or the sim)",
            ),
            Node(
                package="para_ros",
                executable="para_policy",
                name="para_policy",
                output="screen",
                parameters=[params_file, {"model_path": model, "use_sim_time": use_sim_time}],
            ),
            Node(
                package="para_ros",
                executable="para_libero_bridge",
                name="para_libero_bridge",
                output="screen",
                condition=IfCondition(sim),
                parameters=[bridge_params, {"use_sim_time": use_sim_time}],
            ),
        ]
    )
