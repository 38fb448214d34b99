"""Model-based RL agent loop and SAC/PPO baselines, without ROS (docs/results.md).

  config.py      AgentConfig: config/agent/<task>.yaml (budgets, eval schedule, threshold)
  common.py      shared env construction, step/frame accounting, evaluation episodes
  mbrl_loop.py   collect -> cache -> train (torch) -> export ONNX -> plan through the runtime
  baselines.py   stable-baselines3 SAC / PPO on the same envs and eval schedule
  runlog.py      the run folder: evals.csv + run.json, resumable
  report.py      learning-curve plots and threshold tables from saved results
  agent_cli.py   `mbrl-ros agent run|report`

Submodules are imported on use: torch / SB3 only load for the method that runs.
"""
