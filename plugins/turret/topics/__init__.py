"""The topic engine: stable, incremental topics with few outliers and parent themes, per (project, field).

- ``turret.topics.engine``: ``TopicModel``, the in-memory reduce -> cluster -> reassign pipeline;
- ``turret.topics.matching``: stable ids and lineage across re-fits;
- ``turret.topics.hierarchy``: parent themes;
- ``turret.topics.store``: the warehouse side, ``update_topics`` and ``label_topics`` (the DAG's entry
  points).

docs/topics_engine.md explains the algorithm and its figures; docs/adr/0005-stable-topics.md the choices.
"""

from turret.topics.engine import TopicModel
from turret.topics.store import DEFAULT_CONFIG, EngineConfig, TopicsError, label_topics, update_topics

__all__ = ["DEFAULT_CONFIG", "EngineConfig", "TopicModel", "TopicsError", "label_topics", "update_topics"]
