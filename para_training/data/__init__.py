"""Episode data: one representation (`Episode`) and readers for each source.

Importing these modules does not import torch (the rosbag replay tools of para_ros use them);
only `dataset` does.
"""
