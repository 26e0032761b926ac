"""
### Turret: hourly topics and journeys (airflow DAG)

Every hour: load the landing segments sealed since the last run into DuckDB, check them with
great-expectations, type the metadata fields, embed new texts, assign them to the existing topics
(discovering new ones from texts that fit nowhere), name new or changed topics, build the dbt marts,
compute journeys with networkx, check the marts and publish a read-only copy for BI tools.

Re-running an hour changes nothing; a failed data check stops the run before anything is published.
"""

from turret_airflow.pipeline import build_pipeline_dag

dag = build_pipeline_dag(
    "turret_hourly", schedule="@hourly", mode="auto", doc_md=__doc__, tags=["hourly"]
)

if __name__ == "__main__":
    dag.test()
