"""Fine-tuning OV-AVEL baseline: not implemented yet, so it refuses to pretend."""

import sys

if __name__ == "__main__":
    sys.exit("train.py: the fine-tuning baseline is not implemented yet; nothing was run.")
