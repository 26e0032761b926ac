"""The TURRET_TOPIC_* settings: defaults from the engine, validation, and how they reach the engine."""

from __future__ import annotations

import dataclasses

import pytest
from turret.settings import Settings, SettingsError
from turret.topics import DEFAULT_CONFIG, EngineConfig, update_topics
from turret.topics import engine as eng


def test_defaults_are_the_engines():
    s = Settings()
    assert (s.topic_min_samples, s.topic_outlier_threshold, s.topic_assign_threshold) == (
        eng.MIN_SAMPLES, eng.OUTLIER_THRESHOLD, eng.ASSIGN_THRESHOLD
    )
    assert EngineConfig.from_settings(s) == EngineConfig() == DEFAULT_CONFIG


def test_settings_from_the_environment_reach_the_config():
    s = Settings.from_env({
        "TURRET_TOPIC_REDUCER": "UMAP",
        "TURRET_TOPIC_REDUCER_COMPONENTS": "5",
        "TURRET_TOPIC_MIN_CLUSTER_SIZE": "12",
        "TURRET_TOPIC_MIN_SAMPLES": "3",
        "TURRET_TOPIC_OUTLIER_THRESHOLD": "0.4",
        "TURRET_TOPIC_ASSIGN_THRESHOLD": "0.5",
        "TURRET_TOPIC_REFIT_GROWTH": "3",
        "TURRET_TOPIC_FIT_SAMPLE": "20000",
        "TURRET_TOPIC_DRIFT_UNCLUSTERED_SHARE": "0.2",
        "TURRET_TOPIC_DRIFT_SIMILARITY_DROP": "0.05",
    })
    config = EngineConfig.from_settings(s)
    assert dataclasses.asdict(config) == {
        **dataclasses.asdict(DEFAULT_CONFIG),
        "reducer": "umap", "n_components": 5, "min_cluster_size": 12, "min_samples": 3,
        "outlier_threshold": 0.4, "assign_threshold": 0.5, "refit_growth": 3.0, "fit_sample": 20000,
        "drift_unclustered_share": 0.2, "drift_similarity_drop": 0.05,
    }
    model = config.topic_model()
    assert (model.min_cluster_size, model.min_samples, model.outlier_threshold) == (12, 3, 0.4)
    assert model.fit_sample == 20000
    assert EngineConfig.from_settings(Settings(topic_fit_sample=0)).topic_model().fit_sample is None
    assert type(model.reducer).__name__ == "UMAPReducer" and model.reducer.n_components == 5
    # internal knobs stay overridable
    assert EngineConfig.from_settings(Settings(), pool_min=10).pool_min == 10
    # 0 means automatic; as_env round-trips.
    assert EngineConfig.from_settings(Settings(topic_min_cluster_size=0)).min_cluster_size is None
    assert Settings.from_env(s.as_env()) == s


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("TURRET_TOPIC_REDUCER", "tsne",
         "TURRET_TOPIC_REDUCER='tsne' is not valid: use one of pca, umap, none"),
        ("TURRET_TOPIC_REDUCER_COMPONENTS", "0",
         "TURRET_TOPIC_REDUCER_COMPONENTS=0 is not valid: must be >= 1"),
        ("TURRET_TOPIC_REDUCER_COMPONENTS", "ten",
         "TURRET_TOPIC_REDUCER_COMPONENTS='ten' is not a valid int"),
        ("TURRET_TOPIC_MIN_CLUSTER_SIZE", "1",
         "TURRET_TOPIC_MIN_CLUSTER_SIZE=1 is not valid: use 0 (automatic)"),
        ("TURRET_TOPIC_MIN_CLUSTER_SIZE", "-5", "TURRET_TOPIC_MIN_CLUSTER_SIZE=-5 is not valid"),
        ("TURRET_TOPIC_MIN_SAMPLES", "0", "TURRET_TOPIC_MIN_SAMPLES=0 is not valid: must be >= 1"),
        ("TURRET_TOPIC_MIN_SAMPLES", "2.5", "TURRET_TOPIC_MIN_SAMPLES='2.5' is not a valid int"),
        ("TURRET_TOPIC_OUTLIER_THRESHOLD", "1.5",
         "TURRET_TOPIC_OUTLIER_THRESHOLD=1.5 is not valid: must be >= 0 and <= 1"),
        ("TURRET_TOPIC_OUTLIER_THRESHOLD", "nan",
         "TURRET_TOPIC_OUTLIER_THRESHOLD=nan is not valid: not a number"),
        ("TURRET_TOPIC_ASSIGN_THRESHOLD", "-0.1", "TURRET_TOPIC_ASSIGN_THRESHOLD=-0.1 is not valid"),
        ("TURRET_TOPIC_ASSIGN_THRESHOLD", "high",
         "TURRET_TOPIC_ASSIGN_THRESHOLD='high' is not a valid float"),
        ("TURRET_TOPIC_REFIT_GROWTH", "1", "TURRET_TOPIC_REFIT_GROWTH=1.0 is not valid: must be > 1"),
        ("TURRET_TOPIC_FIT_SAMPLE", "500",
         "TURRET_TOPIC_FIT_SAMPLE=500 is not valid: use 0 (every text) or a sample of 1000 texts or more"),
        ("TURRET_TOPIC_FIT_SAMPLE", "-1", "TURRET_TOPIC_FIT_SAMPLE=-1 is not valid"),
        ("TURRET_TOPIC_DRIFT_UNCLUSTERED_SHARE", "0",
         "TURRET_TOPIC_DRIFT_UNCLUSTERED_SHARE=0.0 is not valid: must be > 0 and <= 1"),
        ("TURRET_TOPIC_DRIFT_SIMILARITY_DROP", "3",
         "TURRET_TOPIC_DRIFT_SIMILARITY_DROP=3.0 is not valid: must be > 0 and <= 2"),
    ],
)
def test_bad_values_name_the_variable(name, raw, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: raw})
    assert message in str(err.value)


def test_direct_construction_is_validated_too():
    with pytest.raises(SettingsError, match="TURRET_TOPIC_MIN_SAMPLES=2.5 is not valid: not an integer"):
        Settings(topic_min_samples=2.5)
    with pytest.raises(SettingsError, match="TURRET_TOPIC_REDUCER"):
        dataclasses.replace(Settings(), topic_reducer="kmeans")


def test_update_topics_reads_the_settings_by_default(warehouse, settings, intent_data, add_texts):
    texts, _gold, X = intent_data
    add_texts(warehouse, "p1", "prompt", [f"e{i:03d}" for i in range(len(texts))], texts, X)
    # A min cluster size above half the texts: nothing can be clustered, everything waits.
    strict = dataclasses.replace(settings, topic_min_cluster_size=150)
    stats = update_topics(warehouse, strict, run_id="r1")["dimensions"]["p1/prompt"]
    assert (stats["action"], stats["topics"], stats["min_cluster_size"]) == ("refit", 0, 150)
    assert stats["unclustered_share"] == 1.0


def test_the_assign_task_passes_the_settings_config(settings, monkeypatch):
    import turret.topics
    from turret import tasks

    seen = {}

    def fake_update_topics(con, s, *, run_id, mode, config=None, prototypes=None):
        seen.update(config=config, mode=mode, prototypes=prototypes)
        return {"mode": mode}

    monkeypatch.setattr(turret.topics, "update_topics", fake_update_topics)
    tuned = dataclasses.replace(settings, topic_assign_threshold=0.6, topic_reducer="none")
    tasks.assign_topics(tuned, run_id="r1", mode="incremental")
    assert seen["config"] == EngineConfig.from_settings(tuned)
    assert (seen["config"].assign_threshold, seen["config"].reducer) == (0.6, "none")
    # The conversational prototypes of the journey model come along, embedded by the configured model.
    assert set(seen["prototypes"]) == {"greeting", "closing", "confirmation"}
