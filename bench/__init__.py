"""Benchmarks: one module per benchmark, each with a ``main()``; run with ``python -m bench [name]``.

They are not tests: they print figures and ratios against a baseline measured in the same run, and
write their results as JSON under ``bench/results/``.
"""
