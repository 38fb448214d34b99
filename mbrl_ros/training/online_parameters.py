"""The online trainer's settings, declared once (mbrl_ros.params).

OnlineConfig (mbrl_ros.training.online) takes its defaults and checks from this
table, and the trainer node declares the same entries as ROS parameters beside
its node-only ones. Standard library only: the node reads it before anything
that imports torch, which it loads in its worker thread so a failure there is
reported on /diagnostics rather than killing the process.
"""
from __future__ import annotations

from mbrl_ros.params import Param, defaults, table

ONLINE_PARAMETERS = table(
    Param("preset", "string", "small", "world-model preset when starting from scratch (WorldModelConfig.PRESETS)"),
    Param("train_ratio", "double", 0.5, "gradient steps per new real transition", range=(0.0, 1000.0)),
    Param("export_every", "integer", 200, "gradient steps between published bundles", range=(1, 10_000_000)),
    Param("max_steps_owed", "integer", 2000, "most gradient steps the trainer may owe; when it falls further "
          "behind the data the excess is dropped (counted in /diagnostics steps_dropped); 0: no cap",
          range=(0, 2**31 - 1)),
    Param("seed", "integer", 0, "training seed", range=(0, 2**31 - 1)),
)
ONLINE_DEFAULTS = defaults(ONLINE_PARAMETERS)
