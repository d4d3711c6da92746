#!/usr/bin/env bash
# Complex-valued fusion. Run from the repository root; extra arguments go to train.py:
#   bash run_complex_fusion.sh                                # 2 streams (configs/complex_fusion_2stream.yaml)
#   bash run_complex_fusion.sh --config configs/complex_fusion_4stream.yaml
#   bash run_complex_fusion.sh --phase-gan                    # the 4-stream phase generator (train_phase_gan.py)
#   bash run_complex_fusion.sh --resume
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common/python.sh"
if [[ "${1:-}" == "--phase-gan" ]]; then
  shift
  exec "$python" "$here/train_phase_gan.py" --config "$here/configs/complex_fusion_4stream.yaml" "$@"
fi
exec "$python" "$here/train.py" --config "$here/configs/complex_fusion_2stream.yaml" "$@"
