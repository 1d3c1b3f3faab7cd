"""ROS 2 nodes: thin adapters around the pure core and runtime."""
