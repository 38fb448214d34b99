"""mbrl_ros: model-based RL for ROS 2.

Layers (each importable on its own; see docs/ARCHITECTURE.md):
  mbrl_ros.envs         MuJoCo robots as gymnasium envs        (mujoco, gymnasium)
  mbrl_ros.world_model  VAE + RSSM + heads, losses             (torch)
  mbrl_ros.data         rosbag2 ingestion, episode cache        (rosbags, numpy)
  mbrl_ros.training     trainer, evaluation                     (torch)
  mbrl_ros.export       torch -> ONNX bundle, parity            (torch, onnx)
  mbrl_ros.runtime      ONNX sessions, belief filter, planners  (numpy, onnxruntime)
  mbrl_ros.nodes        ROS 2 nodes, thin adapters              (rclpy)
"""

__version__ = "0.1.0"
