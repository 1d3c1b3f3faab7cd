"""rosbag2 recording, offline replay evaluation and timed replay into the live node."""
