#!/usr/bin/env bash
# Reproduces the shipped default model models/reacher2d (the camera reacher) from scratch (no ROS needed), exactly
# as it was made: camera-reacher episodes recorded as rosbag2, the small world model trained
# on them in two phases (the second after more episodes were recorded), exported as a
# parity-checked ONNX bundle, then evaluated against a random policy.
# The shipped model stopped at step 7600 (models/reacher2d/CURRENT) after about 2 hours on a
# shared 2-core CPU; it plans better than random but is far from the expert (docs/nodes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl}
RUN=${RUN:-runs/default}
CLI=.venv/bin/mbrl-ros
collect() { $CLI collect --env mbrl_ros/Reacher2D-v0 --out "$RUN/bags" "$@"; }
train() { $CLI train --bags "$RUN/bags" --config "$RUN/bags/ingest.yaml" --out "$RUN/train" \
            --steps 20000 --save-every 100 --threads 1 --seed 0 "$@"; }

# phase 1: 40 random + 30 scripted-expert episodes, 2000 gradient steps
collect --episodes 40 --policy random --seed 1000 --prefix random
collect --episodes 30 --policy scripted --seed 2000 --prefix scripted
train --preset small --steps 2000
# phase 2: 150 more random + 60 more scripted episodes (more target positions), resume
collect --episodes 150 --policy random --seed 3000 --prefix random2
collect --episodes 60 --policy scripted --seed 4000 --prefix scripted2
train --resume --steps 3700
# phase 3: weight the reward loss x50 so the encoder attends to the small target disc
train --resume --set reward_scale=50 --steps 7600

.venv/bin/python scripts/ship_model.py --checkpoint "$RUN/train/checkpoint.pt" --task reacher2d
.venv/bin/python scripts/eval_controller.py --store models/reacher2d --episodes 10
