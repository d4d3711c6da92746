#!/usr/bin/env bash
# Training-free baseline; extra arguments are passed through to eval_zero_shot.py.
set -euo pipefail
exec python eval_zero_shot.py "$@"
