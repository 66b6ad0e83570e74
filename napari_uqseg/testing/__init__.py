"""Tiny synthetic data and models so tests, demos and benchmarks run on CPU in seconds."""
