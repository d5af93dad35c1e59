"""The benchmark harness: goomerang against the raw `websockets` package.

Run ``python bench/run.py`` (or ``scripts/bench``); see the README's
"Benchmarks" section.
"""
