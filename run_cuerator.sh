#!/usr/bin/env bash
# CueRator: the global rule and the policy. Run from the repository root; extra arguments go to train_cuerator.py:
#   bash run_cuerator.sh --fit-rule
#   bash run_cuerator.sh --resume
#   bash run_cuerator.sh cuerator.epochs=5 cuerator.oracle_candidates=4096
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common/python.sh"
exec "$python" "$here/train_cuerator.py" --config "$here/configs/cuerator_policy.yaml" "$@"
