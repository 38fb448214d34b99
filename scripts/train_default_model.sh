#!/usr/bin/env bash
# Reproduces the shipped default model models/reacher2d from scratch (no ROS needed):
# 40 random + 30 scripted-expert episodes of the camera reacher recorded as rosbag2,
# the small world model trained on them, exported as a parity-checked ONNX bundle,
# then evaluated against a random policy. Pass MINUTES=... to change the training budget.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl}
RUN=${RUN:-runs/default}
MINUTES=${MINUTES:-70}
CLI=.venv/bin/mbrl-ros
$CLI collect --env mbrl_ros/Reacher2D-v0 --episodes 40 --policy random --seed 1000 --out "$RUN/bags" --prefix random
$CLI collect --env mbrl_ros/Reacher2D-v0 --episodes 30 --policy scripted --seed 2000 --out "$RUN/bags" --prefix scripted
$CLI train --bags "$RUN/bags" --config "$RUN/bags/ingest.yaml" --out "$RUN/train" --preset small \
    --steps 20000 --minutes "$MINUTES" --save-every 100 --threads 1 --seed 0
.venv/bin/python scripts/ship_model.py --checkpoint "$RUN/train/checkpoint.pt" --task reacher2d
.venv/bin/python scripts/eval_controller.py --store models/reacher2d --episodes 10
