#!/usr/bin/env bash
# One entry point for a fresh machine without a ROS 2 install:
#   ./mbrl.sh demo   set up (once) and run the main job: the simulated robot
#                    controlled by the shipped model while it keeps learning
#   ./mbrl.sh test   set up (once) and run the test suite
#   ./mbrl.sh setup  only set up the virtual environment (.venv)
#   ./mbrl.sh <args> anything else is passed to the `mbrl-ros` CLI in the venv
# Set-up is idempotent: it is skipped while requirements/* and setup.py are unchanged.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${MBRL_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

setup() {
  local stamp="$VENV/.mbrl-setup-stamp"
  local want
  want=$(cat requirements/*.txt setup.py | sha256sum | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  if [[ -n "${ROS_DISTRO:-}" ]]; then
    echo "mbrl.sh: ROS_DISTRO=$ROS_DISTRO is sourced; this script installs ROS 2 from PyPI into a venv." >&2
    echo "         On a ROS 2 install use colcon instead (see README, 'With a ROS 2 install')." >&2
    exit 2
  fi
  echo "mbrl.sh: setting up $VENV (first run takes a few minutes)" >&2
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first and pinned, so nothing later resolves a CUDA build.
  "$VENV/bin/python" -m pip install --quiet torch==2.13.0
  "$VENV/bin/python" -m pip install --quiet -r requirements/base.txt -r requirements/train.txt \
    -r requirements/ros-pypi.txt -r requirements/dev.txt -c requirements/constraints.txt
  "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
}

export MUJOCO_GL=${MUJOCO_GL:-egl}
cmd=${1:-demo}
[[ $# -gt 0 ]] && shift
setup
case "$cmd" in
  setup) ;;
  demo)  exec "$VENV/bin/mbrl-ros" demo "$@" ;;
  test)  exec "$VENV/bin/python" -m pytest "$@" ;;
  *)     exec "$VENV/bin/mbrl-ros" "$cmd" "$@" ;;
esac
