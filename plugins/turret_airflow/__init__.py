"""Airflow-only glue: builds Turret's DAGs from the task functions in ``turret.tasks``."""
