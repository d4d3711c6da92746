#!/usr/bin/env bash
# Fine-tuning baseline. Run from the repository root; extra arguments go to train.py:
#   bash run_baseline_v1_train_fully.sh --resume
#   bash run_baseline_v1_train_fully.sh temporal.num_layers=2 train.epochs=10
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common/python.sh"
exec "$python" "$here/train.py" --config "$here/configs/v1_fine_tuning.yaml" "$@"
