"""Robot-side runtime: numpy + onnxruntime only. Never import torch or rclpy here."""
