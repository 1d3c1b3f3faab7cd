"""LIBERO simulation (no ROS): environment wrapper, scripted expert, demos, evaluation."""
