#!/usr/bin/env bash
# The device check of a GPU machine (scripts/device_check.py): DDP training under torchrun on every visible GPU
# (NCCL) on a dataset it collects, sharded eval against one process, bf16 planning against fp32 on the same
# pairs, and the training and planning throughput of the paper preset (scripts/gpu_check.py). One table at the
# end (check | ok / FAILED / skipped | figures); exit status 1 if a check failed.
#
# On a GPU machine, from the repository root, with wmplan installed on a CUDA build of torch
# (make install TORCH_SPEC='torch==2.6.0'; source .venv/bin/activate):
#     bash scripts/gpu_check.sh [--nproc N] [--out DIR] [--timeout SECONDS]
# On a CPU, tiny (2 gloo ranks, about a minute): bash scripts/gpu_check.sh --device cpu --tiny
# DEVICE=cpu sets the default device; PYTHON names the interpreter (default: python).
set -euo pipefail
exec "${PYTHON:-python}" "$(dirname "$0")/device_check.py" --device "${DEVICE:-cuda}" "$@"
