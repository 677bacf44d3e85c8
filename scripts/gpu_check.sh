#!/usr/bin/env bash
# Training and planning throughput of the paper preset (DINOv2 token shape) on a GPU, random weights.
# Run wherever a GPU is available, from the repository root with wmplan installed (e.g. a CUDA torch and
# `pip install -e .`): bash scripts/gpu_check.sh [extra flags of scripts/gpu_check.py]
set -euo pipefail
python "$(dirname "$0")/gpu_check.py" --device cuda --preset paper --json gpu_check.json "$@"
echo "wrote gpu_check.json"
