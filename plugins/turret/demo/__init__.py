"""The demo: a synthetic but realistic prompt log of an AI assistant, and the runner behind ``make demo``.

``turret.demo.dataset.generate()`` builds the events (deterministic for a seed); ``python -m turret.demo``
(``turret.demo.runner``) posts them through the real ingest API and runs the pipeline end to end.
"""
