#!/usr/bin/env bash
# Fine-tuning baseline; extra arguments are passed through to train.py.
set -euo pipefail
exec python train.py "$@"
