"""The fan-out benchmark of issue 6: `python -m bench` (see bench/run.py, docs/performance.md)."""
