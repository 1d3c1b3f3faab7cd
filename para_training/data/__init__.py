"""The torch side of episode data: `dataset` (training samples) and `stats` (the PolicySpec
a dataset defines). The Episode type and the readers live in `para_ros.data` (no torch, no
rclpy).
"""
