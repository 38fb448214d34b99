#!/usr/bin/env bash
# Reproduces the shipped default model models/cartpoleswingup from scratch (no ROS needed):
# 60 random + 40 scripted swing-up episodes of the cart-pole (camera + joints) recorded as
# rosbag2, the small world model trained on them, exported as a parity-checked ONNX bundle,
# then evaluated against a random policy. STEPS bounds the training (the shipped model's
# step count is in models/cartpoleswingup/CURRENT).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl}
RUN=${RUN:-runs/cartpole}
CLI=.venv/bin/mbrl-ros
$CLI collect --env mbrl_ros/CartpoleSwingup-v0 --episodes 60 --policy random --seed 1000 --out "$RUN/bags" --prefix random
$CLI collect --env mbrl_ros/CartpoleSwingup-v0 --episodes 40 --policy scripted --seed 2000 --out "$RUN/bags" --prefix scripted
$CLI train --bags "$RUN/bags" --config "$RUN/bags/ingest.yaml" --out "$RUN/train" --preset small \
    --steps "${STEPS:-3000}" --save-every 100 --threads 1 --seed 0
.venv/bin/python scripts/ship_model.py --checkpoint "$RUN/train/checkpoint.pt" --task cartpoleswingup
.venv/bin/python scripts/eval_controller.py --store models/cartpoleswingup --env mbrl_ros/CartpoleSwingup-v0 --episodes 10
