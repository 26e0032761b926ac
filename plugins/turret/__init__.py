"""Turret: self-hosted product analytics for AI/LLM applications.

The product's logic lives here as a plain package. Nothing in it imports Airflow at module level, so the
ingest API, the command line and the DAGs can all use it.
"""

__version__ = "0.1.0"
