"""trainer_node: the online trainer (mbrl_ros.training.online) as a ROS 2 node.

Training runs in a worker thread; the node only reports progress on
/diagnostics. It talks to the controller through folders (bags in, bundles
out), never through topics, so it can run on another machine.

Everything that can fail after the parameters are read (importing torch and the
training code, the task's ingest description, the checkpoint, a training step)
runs in the worker. An exception there stops training for good and /diagnostics
says so: ERROR with the exception's type and message, `state: failed`, the step
count frozen, until the node is restarted. A bad bag segment or a failed export is
not such a failure: it is reported (WARN, `last_error`) and training goes on.

A background node (mbrl_ros.nodes.cpu_share): it runs at its `niceness` with its
compute threads capped, so it never takes the controller's CPU.
"""
from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

from mbrl_ros.nodes.common import declare, run, publish_status
from mbrl_ros.nodes.cpu_share import cpu_share_parameters, yield_cpu
from mbrl_ros.params import Param, table
from mbrl_ros.training.online_parameters import ONLINE_PARAMETERS

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
    ONLINE_PARAMETERS,  # preset, train_ratio, export_every, max_steps_owed, seed: shared with OnlineConfig
    Param("poll_s", "double", 2.0, "how often to look for new bag segments", range=(0.05, 3600.0), unit="s"),
    *cpu_share_parameters(niceness=10, threads=1),  # leave the cores to the sim and the controller
)


def _checkpoint_from(init_from: str):
    if not init_from:
        return None
    path = Path(init_from)
    return path / "checkpoint.pt" if path.is_dir() else path


class TrainerNode(Node):
    def __init__(self):
        super().__init__("trainer")
        self.p = declare(self, PARAMETERS)
        if not (self.p["ingest_config"] or self.p["env_id"]):
            raise ValueError("set env_id (simulation) or ingest_config (real robot)")
        logging.basicConfig(level=logging.INFO)
        # Before torch is imported (in the worker): its pools read the thread caps when they load.
        self.cpu = yield_cpu(self.p["niceness"], self.p["threads"])
        self.online = None  # the OnlineTrainer, once the worker has built it
        self.failure: str | None = None  # set when training stopped on an exception
        self.stop_event = threading.Event()
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(2.0, self._publish_diagnostics)
        self.worker = threading.Thread(target=self._work, name="mbrl-online-trainer", daemon=True)
        self.worker.start()
        self.get_logger().info(f"training from {self.p['bag_dir']} into {self.p['model_store']} "
                               f"(nice {self.cpu['niceness']}, {self.cpu['threads']} threads)")

    def _work(self) -> None:
        """The worker: build the trainer and run it. Any exception ends training, reported as ERROR."""
        try:
            self.online = _build_online_trainer(self.p)
            self.online.run(self.stop_event, float(self.p["poll_s"]), raise_errors=True)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, /diagnostics must say training stopped
            self.failure = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"training stopped: {self.failure}\n{traceback.format_exc()}")
            self._publish_diagnostics()  # now, not at the next timer tick

    def _publish_diagnostics(self) -> None:
        if not self.context.ok():
            return
        values = self.online.status() if self.online is not None else {"train_step": "0"}
        values.update(self.cpu)
        if self.failure:
            values.update(state="failed", error=self.failure)
            level, message = DiagnosticStatus.ERROR, f"training stopped: {self.failure}"
        elif self.online is None:
            values["state"] = "starting"
            level, message = DiagnosticStatus.OK, "starting"
        else:
            values["state"] = "training"
            level = DiagnosticStatus.WARN if "last_error" in values else DiagnosticStatus.OK
            message = values.get("last_error", "training")
        publish_status(self, self.pub_diag, "mbrl_ros: trainer", level, message, values)

    def close(self) -> None:
        self.stop_event.set()
        self.worker.join(timeout=30.0)


def _build_online_trainer(p: dict):
    from mbrl_ros.data.bags import IngestConfig
    from mbrl_ros.training.online import OnlineConfig, OnlineTrainer

    if p["ingest_config"]:
        ingest = IngestConfig.from_yaml(Path(p["ingest_config"]))
    else:
        import mbrl_ros.envs as envs

        env = envs.make(p["env_id"], image_size=int(p["image_size"]))
        # The logger holds a lock on its open segment, so a bag without metadata is a crashed
        # one to salvage, not one still being written: no grace period needed.
        ingest = IngestConfig.for_env(env, active_grace_s=0.0)
        env.close()
    return OnlineTrainer(OnlineConfig(
        bag_dir=p["bag_dir"], work_dir=p["work_dir"], model_store=p["model_store"], ingest=ingest,
        init_checkpoint=_checkpoint_from(p["init_from"]), threads=int(p["threads"]),
        **{name: p[name] for name in ONLINE_PARAMETERS}))


def main() -> int:
    return run(TrainerNode)


if __name__ == "__main__":
    raise SystemExit(main())
