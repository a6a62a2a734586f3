"""The fan-out benchmark: `python -m bench` (see bench/run.py, docs/performance.md)."""
