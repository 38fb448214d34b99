"""Training (torch): the Trainer, held-out evaluation, and the `train` / `evaluate` CLI commands.

Never imports rclpy: the trainer node wraps `Trainer` (add_episodes / train / save).
"""
