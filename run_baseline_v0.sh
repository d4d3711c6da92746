#!/usr/bin/env bash
# Training-free baseline. Run from the repository root; extra arguments go to eval_zero_shot.py:
#   bash run_baseline_v0.sh --strategy v0 eval.split=val
#   bash run_baseline_v0.sh --config configs/my_experiment.yaml
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common/python.sh"
exec "$python" "$here/eval_zero_shot.py" --config "$here/configs/v0_training_free.yaml" "$@"
