"""Training-free OV-AVEL evaluation: not implemented yet, so it refuses to pretend."""

import sys

if __name__ == "__main__":
    sys.exit("eval_zero_shot.py: the training-free baseline is not implemented yet; nothing was run.")
