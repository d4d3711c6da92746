"""The runs the entry points start: evaluation, training, and what they write."""
