"""PARA (Pixel-Aligned Robot Actions) on ROS 2.

The pure core (`contract`, `geometry`, `codecs`, `runtime`) imports neither rclpy nor torch.
ROS nodes live in `para_ros.nodes`; the generated interfaces in `para_ros.msg`.
"""

__version__ = "0.1.0"
