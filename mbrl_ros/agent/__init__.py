"""Model-based RL agent loop and SAC/PPO baselines, without ROS (docs/results.md).

  config.py      AgentConfig: config/agent/<task>.yaml (budgets, eval schedule, threshold)
  common.py      shared env construction, step/frame accounting, evaluation episodes
  mbrl_loop.py   collect -> cache -> train (torch) -> export ONNX -> plan through the runtime
  baselines.py   stable-baselines3 SAC / PPO (defaults, rl-zoo tuned PPO, high update-to-data SAC,
                 DrQ-style SAC) on the same envs and eval schedule
  drq.py         random-shift augmentation of SAC's sampled replay batches (sac_drq)
  protocol.py    the evaluation protocol's rules (docs/protocol.md): seed ranges, run.json record, refusals
  runlog.py      the run folder: evals.csv + run.json, resumable
  snapshot.py    a model-based run's committable state (checkpoint + actions), restored by replay
  report.py      learning-curve plots, threshold tables, headline table with bootstrap intervals
  agent_cli.py   `mbrl-ros agent run|report|snapshot|expert`

Submodules are imported on use: torch / SB3 only load for the method that runs.
"""
