#!/usr/bin/env bash
# Run the sample-efficiency benchmark runs of one task and method, seed after seed (resumable:
# a run folder with finished evaluations is continued). Results land in results/<task>/<method>/seed<S>/.
#
#   scripts/run_agent_benchmark.sh config/agent/inverted_pendulum.yaml ppo 0 1 2
#   .venv/bin/mbrl-ros agent report --results results --out docs/
set -euo pipefail
cd "$(dirname "$0")/.."
config=$1; method=$2; shift 2
export MUJOCO_GL=${MUJOCO_GL:-egl}
for seed in "$@"; do
  echo "== $(date -Is) $config $method seed $seed"
  nice -n 10 .venv/bin/mbrl-ros agent run --config "$config" --method "$method" --seed "$seed" --no-progress
done
