#!/usr/bin/env bash
# Reproduces the shipped default model models/reacher2d (the camera reacher) from scratch (no ROS needed),
# exactly as it was made:
#   1. 50 random-policy episodes of mbrl_ros/Reacher2D-v0 (64x64 camera, seeds 1000..1049) into an episode
#      cache, plus 50 held-out ones (seeds 900000..) for the evaluation, by the training benchmark;
#   2. the small world model with the keypoint encoder (keypoints=16 conv_features=false) and the frame
#      reward head (frame_reward_scale=1000), reward loss x20, for 1000 gradient steps;
#   3. resumed with the reward loss x1000 up to step 8000, then at learning rate 2e-4 up to step 10000;
#   4. resumed with symmetry augmentation (symmetry_augment=dihedral: each window turned by a random quarter
#      turn about the base and mirrored, exact for this scene) up to step 12000 (sixth session);
#   5. exported as a parity-checked ONNX bundle (+ slim checkpoint) and evaluated against a random policy.
# docs/world_model.md explains the options, docs/nodes.md has the returns. About 1.7 h of training on one
# CPU core (about 2 steps/s). Bit-exact reproduction is not promised: CPU kernels and thread timing differ.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl}
RUN=${RUN:-runs/default_model}
PY=.venv/bin/python

$PY benchmarks/bench_training.py --steps 1000 --threads 1 --out "$RUN" \
    --set keypoints=16 conv_features=false reward_scale=20 frame_reward_scale=1000
train() { .venv/bin/mbrl-ros train --cache "$RUN/data/train" --out "$RUN" --resume --threads 1 --save-every 100 "$@"; }
train --set reward_scale=1000 --steps 8000
train --set reward_scale=1000 lr_model=2e-4 --steps 10000
train --set reward_scale=1000 lr_model=2e-4 symmetry_augment=dihedral --steps 12000
.venv/bin/mbrl-ros evaluate --checkpoint "$RUN/checkpoint.pt" --cache "$RUN/data/heldout50" --out "$RUN/eval50"

$PY scripts/ship_model.py --checkpoint "$RUN/checkpoint.pt" --task reacher2d
$PY scripts/eval_controller.py --store models/reacher2d --episodes 10 --planner-config '{"use_value": false}'  # as config/ros/sim.yaml
