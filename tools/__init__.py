"""Command-line tools: feature extraction, video preparation, scoring, benchmarks."""
