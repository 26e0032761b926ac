"""
### Turret: daily full re-fit of topics (airflow DAG)

Once a day (or when triggered): the same pipeline as the hourly DAG, but topics are re-clustered from all
texts. New clusters are matched to existing topics so ids stay stable; the lineage table records which
topics continued, appeared, merged, split or retired.
"""

from turret_airflow.pipeline import build_pipeline_dag

dag = build_pipeline_dag(
    "turret_refit", schedule="@daily", mode="refit", doc_md=__doc__, tags=["refit"]
)

if __name__ == "__main__":
    dag.test()
