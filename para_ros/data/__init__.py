"""Episode data on the pure side (no torch, no rclpy): one representation (`Episode`) and a
reader per source format.

    episode      the Episode type every reader returns (conventions in its docstring)
    source       DataSource: a format plus its mapping (keys/topics, frames, calibration),
                 and the command-line options every tool shares
    readers      load_episodes(paths, source): picks the reader by what each path is
    hdf5_io      this project's HDF5 demos (para-make-demos)
    libero_io    official LIBERO / robomimic HDF5 (camera from the per-demo MJCF)
    lerobot_io   LeRobot v3.0 dataset folders (parquet + video, calibration sidecar)
    rosbag_io    rosbag2 .mcap/.db3: Image or CompressedImage, poses from topics or /tf
    folder_io    plain episode folders (PNG + npz)
    synthetic    generated episodes with exact geometry (tests, smoke runs)

para_training keeps the torch dataset and the statistics and imports from here.
"""
