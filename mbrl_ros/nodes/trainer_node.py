"""trainer_node: the online trainer (mbrl_ros.training.online) as a ROS 2 node.

Training runs in a worker thread; the node only reports progress on
/diagnostics. It talks to the controller through folders (bags in, bundles
out), never through topics, so it can run on another machine.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

from mbrl_ros.nodes.common import declare, run, publish_status
from mbrl_ros.params import Param, table

PARAMETERS = table(
    Param("env_id", "string", "", "simulated task whose joints/limits/image size describe the bags (sim graph)"),
    Param("image_size", "integer", 64, "camera image size the model takes (sim graph; the sim node's image_size)",
          range=(8, 1024), unit="px"),
    Param("ingest_config", "string", "", "IngestConfig YAML for real robots (instead of env_id)"),
    Param("bag_dir", "string", "mbrl_data/bags", "the logger's segment folder"),
    Param("work_dir", "string", "mbrl_data/trainer", "episode cache, checkpoint and TensorBoard logs"),
    Param("model_store", "string", "mbrl_data/models", "store to publish new bundles into (the controller's "
          "watch_store)"),
    Param("init_from", "string", "", "model store or checkpoint to continue from (a store's checkpoint.pt is used)"),
    Param("preset", "string", "small", "world-model preset when starting from scratch (WorldModelConfig.PRESETS)"),
    Param("train_ratio", "double", 0.5, "gradient steps per new real transition", range=(0.0, 1000.0)),
    Param("export_every", "integer", 200, "gradient steps between published bundles", range=(1, 10_000_000)),
    Param("poll_s", "double", 2.0, "how often to look for new bag segments", range=(0.05, 3600.0), unit="s"),
    Param("threads", "integer", 1, "torch CPU threads", range=(1, 1024)),
    Param("seed", "integer", 0, "training seed", range=(0, 2**31 - 1)),
    Param("niceness", "integer", 10, "raise the process's nice value by this much: training must never starve "
          "control", range=(0, 19)),
)


def _checkpoint_from(init_from: str):
    if not init_from:
        return None
    path = Path(init_from)
    return path / "checkpoint.pt" if path.is_dir() else path


class TrainerNode(Node):
    def __init__(self):
        super().__init__("trainer")
        p = declare(self, PARAMETERS)
        logging.basicConfig(level=logging.INFO)
        if p["niceness"] > 0:
            os.nice(int(p["niceness"]))  # the controller and sim share these cores
        from mbrl_ros.data.bags import IngestConfig
        from mbrl_ros.training.online import OnlineConfig, OnlineTrainer

        if p["ingest_config"]:
            ingest = IngestConfig.from_yaml(Path(p["ingest_config"]))
        elif p["env_id"]:
            import mbrl_ros.envs as envs

            env = envs.make(p["env_id"], image_size=int(p["image_size"]))
            # The logger holds a lock on its open segment, so a bag without metadata is a crashed
            # one to salvage, not one still being written: no grace period needed.
            ingest = IngestConfig.for_env(env, active_grace_s=0.0)
            env.close()
        else:
            raise ValueError("set env_id (simulation) or ingest_config (real robot)")
        self.online = OnlineTrainer(OnlineConfig(
            bag_dir=p["bag_dir"], work_dir=p["work_dir"], model_store=p["model_store"], ingest=ingest,
            init_checkpoint=_checkpoint_from(p["init_from"]), preset=p["preset"],
            train_ratio=float(p["train_ratio"]), export_every=int(p["export_every"]), seed=int(p["seed"]),
            threads=int(p["threads"])))
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self.online.run, args=(self.stop_event, float(p["poll_s"])),
                                       name="mbrl-online-trainer", daemon=True)
        self.worker.start()
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(2.0, self._publish_diagnostics)
        self.get_logger().info(f"training from {p['bag_dir']} into {p['model_store']}")

    def _publish_diagnostics(self) -> None:
        values = self.online.status()
        level = DiagnosticStatus.WARN if "last_error" in values else DiagnosticStatus.OK
        publish_status(self, self.pub_diag, "mbrl_ros: trainer", level, values.get("last_error", "training"), values)

    def close(self) -> None:
        self.stop_event.set()
        self.worker.join(timeout=30.0)


def main() -> int:
    return run(TrainerNode)


if __name__ == "__main__":
    raise SystemExit(main())
