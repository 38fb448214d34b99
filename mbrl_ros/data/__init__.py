"""Data layer: episodes, the episode cache, training-sequence sampling, rosbag2 I/O.

No torch and no rclpy: bags are read and written with `rosbags`.
"""
