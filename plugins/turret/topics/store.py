"""Topics in the warehouse: full re-fits, hourly incremental assignment, the pending pool, themes, labels.

Everything is per (project_id, field) "dimension". State beyond the contract tables lives in three tables
this module creates:

- ``pipeline.topic_centroids``: one unit centroid per live topic, its member count, the representative
  texts (hashes) and keywords that describe it, and the label cache key it was last named under;
- ``pipeline.topic_models``: per dimension, the embedding model, when and on how many texts the last full
  fit ran, its min_cluster_size and mean similarity (the drift baseline), the next fresh topic id (ids are
  never reused), and the pool size at the last discovery attempt;
- ``pipeline.topic_label_cache``: labels by ``label_cache_key``, so an unchanged topic is never relabelled.

The pending pool is not a table: it is the ``pipeline.event_topics`` rows with ``topic_id = -1``.
Auto mode refits when (docs/topics_engine.md, "When a full re-fit runs"): the dimension has no fitted
model or the embedding model changed; the texts doubled since the last fit; the hour's assignment would
leave more than ``drift_unclustered_share`` of all texts pending; or the mean similarity of this run's new
texts to their nearest topic fell ``drift_similarity_drop`` below the last fit's. Each dimension is
written in one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from turret.embed import has_embeddings_table
from turret.settings import Settings
from turret.topics import engine as eng
from turret.topics.hierarchy import assign_themes, keep_previous_themes, match_theme_ids
from turret.topics.matching import match_topics
from turret.topics.reduce import make_reducer
from turret.vectors import unit_rows

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

MODES = ("auto", "incremental", "refit")
UNCLUSTERED_ID = -1
UNCLUSTERED_LABEL = "Unclustered"
UNCLUSTERED_DESCRIPTION = "Texts that fit no topic yet; they are re-examined as more arrive."
REPRESENTATIVE_DOCS = 5  # closest distinct texts to the centroid, shown to the labeler
KEYWORD_SAMPLE = 100  # members per topic (closest first) fed to c-TF-IDF

STATE_DDL: tuple[str, ...] = (
    """
    create table if not exists pipeline.topic_centroids (
        project_id varchar not null,
        field varchar not null,
        topic_id integer not null,
        centroid float[] not null,
        n_members bigint not null,
        representative_hashes json,
        keywords json,
        label_key varchar,
        primary key (project_id, field, topic_id)
    )
    """,
    """
    create table if not exists pipeline.topic_models (
        project_id varchar not null,
        field varchar not null,
        model varchar not null,
        fitted_run_id varchar,
        fitted_at timestamp not null,
        n_fit bigint not null,
        min_cluster_size integer not null,
        mean_similarity double,
        next_topic_id integer not null,
        pool_attempt_size bigint not null,
        params json,
        next_theme_id integer not null default 0,
        primary key (project_id, field)
    )
    """,
    # Warehouses made before theme ids were kept stable.
    "alter table pipeline.topic_models add column if not exists next_theme_id integer default 0",
    """
    create table if not exists pipeline.topic_label_cache (
        cache_key varchar primary key,
        label varchar not null,
        description varchar,
        label_source varchar not null,
        created_at timestamp not null
    )
    """,
)


class TopicsError(ValueError):
    """A bad argument to the topic engine; the message says what is wrong."""


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the engine. Defaults are the tuned values (docs/topics_engine.md). The ones a user tunes are
    ``TURRET_TOPIC_*`` settings (docs/settings.md) and take their defaults from there (thresholds from
    ``turret.topics.engine``), so ``EngineConfig.from_settings(Settings()) == EngineConfig()``; the rest
    are internal. The pipeline builds its config with ``from_settings``."""

    reducer: str = Settings.topic_reducer
    n_components: int = Settings.topic_reducer_components
    min_cluster_size: int | None = None  # None: engine.auto_min_cluster_size(X)
    min_samples: int | None = eng.MIN_SAMPLES
    cluster_selection_method: str = eng.CLUSTER_SELECTION
    outlier_threshold: float = eng.OUTLIER_THRESHOLD
    assign_threshold: float = eng.ASSIGN_THRESHOLD
    refine_iterations: int = eng.REFINE_ITERATIONS
    hysteresis_margin: float = 0.15  # a text leaves its continued topic only for one this much closer
    # A refit's split-off piece this close to the topic it left is folded back: once a topic exists, more
    # data alone does not cut it in two (a new subject arrives as a topic of its own). 0.70 kept 92.5% of ids
    # on the perturbed-refit test with UMAP + leaf, 0.5 kept 100%.
    split_fold_cosine: float = 0.5
    pool_min: int = 50  # pending texts needed before the pool is clustered on its own
    pool_growth: float = 1.25  # ...and the pool must have grown this much since the last attempt
    drift_unclustered_share: float = Settings.topic_drift_unclustered_share
    drift_similarity_drop: float = Settings.topic_drift_similarity_drop
    drift_min_texts: int = 50  # new texts needed before the similarity-drop rule is trusted
    # Refit when the dimension has this many times the texts of the last fit.
    refit_growth: float = Settings.topic_refit_growth
    # Most texts a fit clusters (a seeded sample; the rest join their nearest topic); 0: every text.
    fit_sample: int = Settings.topic_fit_sample

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EngineConfig:
        """The config of the ``TURRET_TOPIC_*`` settings (validated by ``Settings``); internal knobs keep
        their defaults unless given in ``overrides``."""
        values: dict[str, Any] = {
            "reducer": settings.topic_reducer,
            "n_components": settings.topic_reducer_components,
            "min_cluster_size": settings.topic_min_cluster_size or None,
            "min_samples": settings.topic_min_samples,
            "outlier_threshold": settings.topic_outlier_threshold,
            "assign_threshold": settings.topic_assign_threshold,
            "refit_growth": settings.topic_refit_growth,
            "fit_sample": settings.topic_fit_sample,
            "drift_unclustered_share": settings.topic_drift_unclustered_share,
            "drift_similarity_drop": settings.topic_drift_similarity_drop,
        }
        values.update(overrides)
        return cls(**values)

    def topic_model(
        self,
        *,
        min_cluster_size: int | None = None,
        outlier_threshold: float | None = None,
        cluster_selection_method: str | None = None,
        min_fit_size: int = eng.MIN_CLUSTER_INPUT,
    ) -> eng.TopicModel:
        reducer_kwargs = {"n_components": self.n_components} if self.reducer != "none" else {}
        return eng.TopicModel(
            reducer=make_reducer(self.reducer, **reducer_kwargs),
            min_cluster_size=min_cluster_size or self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_method=cluster_selection_method or self.cluster_selection_method,
            outlier_threshold=self.outlier_threshold if outlier_threshold is None else outlier_threshold,
            refine_iterations=self.refine_iterations,
            min_fit_size=min_fit_size,
            fit_sample=self.fit_sample or None,
        )


DEFAULT_CONFIG = EngineConfig()


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    """Create the engine's own state tables (idempotent)."""
    from turret.warehouse import ensure_schema

    ensure_schema(con)
    for statement in STATE_DDL:
        _exec(con, statement)


def model_key(settings: Settings, embedder: Any = None) -> str:
    """How the configured embedder's vectors are keyed in pipeline.embeddings (see turret.embed)."""
    if embedder is not None:
        return getattr(embedder, "cache_model_id", embedder.model_name)
    if settings.embedding_backend == "torch":
        return settings.embedding_model
    return f"{settings.embedding_model}@{settings.embedding_backend}"


# --------------------------------------------------------------------------------------------- update


def update_topics(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    run_id: str,
    mode: str = "auto",
    project_id: str | None = None,
    embedder: Any = None,
    config: EngineConfig | None = None,
    prototypes: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Give every embedded event text a topic, per (project, text field); returns run statistics.

    ``prototypes``: the conversational prototypes (``turret.conversation.prototypes_from_encoder`` with the
    configured embedder); topics whose centroid is one of them get ``kind = 'conversational'``. Without
    them every topic is a subject.

    ``config``: the engine's knobs; by default ``EngineConfig.from_settings(settings)`` (the
    ``TURRET_TOPIC_*`` settings).

    ``mode``: ``auto`` (incremental; a first run or drift refits), ``incremental`` (never refits a fitted
    dimension), ``refit`` (cluster everything again, ids kept by matching). Idempotent: with no new texts
    nothing changes. Texts without a vector for the model yet are left for the next run.
    """
    if mode not in MODES:
        raise TopicsError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if not run_id or not isinstance(run_id, str):
        raise TopicsError("run_id must be a non-empty string")
    config = config or EngineConfig.from_settings(settings)
    ensure_state(con)
    model = model_key(settings, embedder)
    started = _now()
    sql = "select distinct project_id, field from pipeline.event_texts"
    params: list[Any] = []
    if project_id is not None:
        sql += " where project_id = ?"
        params.append(project_id)
    dimensions = con.execute(sql + " order by 1, 2", params).fetchall()
    if not has_embeddings_table(con):
        skipped = {"skipped": "no pipeline.embeddings table yet"}
        dimensions_stats = {f"{p}/{f}": skipped for p, f in dimensions}
    else:
        dimensions_stats = {}
        for pid, field in dimensions:
            _exec(con, "begin transaction")
            try:
                stats = _update_dimension(
                    con, pid, field, run_id=run_id, mode=mode, model=model, config=config
                )
                _mark_kinds(con, pid, field, prototypes)
                if stats.get("action") == "refit" or stats.get("discovered_topics"):
                    _assign_themes(con, pid, field)  # after the kinds: chit-chat gets a theme of its own
                dimensions_stats[f"{pid}/{field}"] = stats
                _exec(con, "commit")
                log.info("topics %s/%s: %s", pid, field, dimensions_stats[f"{pid}/{field}"])
            except BaseException:
                _exec(con, "rollback")
                raise
    stats = {"mode": mode, "model": model, "dimensions": dimensions_stats}
    _record_run(con, run_id, "topics", started, {"topics": stats})
    return stats


def _update_dimension(con, pid: str, field: str, *, run_id: str, mode: str, model: str, config) -> dict:
    state = _load_model_state(con, pid, field)
    reason = None
    if mode == "refit":
        reason = "asked"
    elif state is None:
        reason = "first fit"
    elif state["model"] != model:
        reason = f"embedding model changed ({state['model']} -> {model})"
    if reason:
        return _refit(con, pid, field, run_id=run_id, model=model, config=config, state=state, reason=reason)

    new_ids, X = _load_vectors(con, pid, field, model, only_unassigned=True)
    n_total = _count(con, "pipeline.event_texts", pid, field)
    if not new_ids:
        return {"action": "none", "new_texts": 0, "texts": n_total}
    centroid_ids, C, n_members = _load_centroids(con, pid, field)
    idx, sim = eng.nearest_centroid(X, C)
    assigned = (idx >= 0) & (sim >= config.assign_threshold)

    if mode == "auto":
        pending_before = _count(con, "pipeline.event_topics", pid, field, "topic_id = -1")
        pending_after = pending_before + int((~assigned).sum())
        drift = _drift_reason(state, config, n_total, pending_after, sim, assigned)
        if drift:
            return _refit(con, pid, field, run_id=run_id, model=model, config=config, state=state,
                          reason=drift)

    ids_by_row = np.asarray(centroid_ids, dtype=np.int64)
    topic_of = np.where(assigned, ids_by_row[np.maximum(idx, 0)] if len(ids_by_row) else -1, UNCLUSTERED_ID)
    by = np.where(assigned, eng.ASSIGNED_NEAREST, eng.ASSIGNED_PENDING)
    _insert_event_topics(con, pid, field, new_ids, topic_of, by, sim, run_id)

    # Centroids follow their topics as they grow (running mean), so slow drift needs no refit.
    if assigned.any():
        k = len(centroid_ids)
        sums = np.zeros_like(C, dtype=np.float64)
        np.add.at(sums, idx[assigned], X[assigned])
        counts = np.bincount(idx[assigned], minlength=k)
        grown = np.flatnonzero(counts)
        moved = unit_rows(C[grown] * n_members[grown, None] + sums[grown])
        import pandas as pd

        frame = pd.DataFrame({"topic_id": np.asarray(centroid_ids)[grown], "n": counts[grown],
                              "centroid": list(moved)})
        con.register("_turret_moved_centroids", frame)
        try:
            _exec(con,
                "update pipeline.topic_centroids c set centroid = m.centroid::float[], "
                "n_members = c.n_members + m.n from _turret_moved_centroids m "
                "where c.project_id = ? and c.field = ? and c.topic_id = m.topic_id",
                [pid, field],
            )
        finally:
            con.unregister("_turret_moved_centroids")
    stats = {
        "action": "incremental",
        "new_texts": len(new_ids),
        "assigned": int(assigned.sum()),
        "pending": int((~assigned).sum()),
        "mean_similarity": float(sim[assigned].mean()) if assigned.any() else None,
        "texts": n_total,
    }
    stats["discovered_topics"] = _discover_from_pool(
        con, pid, field, run_id=run_id, model=model, config=config, state=state
    )
    _refresh_sizes(con, pid, field, run_id)
    stats["unclustered_share"] = _unclustered_share(con, pid, field)
    return stats


def _drift_reason(state, config, n_total, pending_after, sim, assigned) -> str | None:
    if n_total >= config.refit_growth * max(1, state["n_fit"]):
        return f"texts grew {n_total / max(1, state['n_fit']):.1f}x since the last fit"
    if n_total and pending_after / n_total > config.drift_unclustered_share:
        return f"unclustered share {pending_after / n_total:.0%} > {config.drift_unclustered_share:.0%}"
    if assigned.size >= config.drift_min_texts and state["mean_similarity"] is not None:
        mean_new = float(sim.mean())
        if mean_new < state["mean_similarity"] - config.drift_similarity_drop:
            return f"mean similarity fell to {mean_new:.2f} from {state['mean_similarity']:.2f}"
    return None


def _refit(con, pid, field, *, run_id, model, config, state, reason) -> dict:
    event_ids, X = _load_vectors(con, pid, field, model, only_unassigned=False)
    if not event_ids:
        # Nothing embedded with this model yet: keep whatever exists rather than retire every topic.
        return {"action": "none", "reason": f"no texts embedded with {model} yet", "texts": 0}
    # The packaged model is English-only: texts confidently in another language would gather by language,
    # so topics are fitted on the rest and they join a topic only when close to one (turret.language).
    foreign = _other_language_rows(con, pid, field, event_ids)
    # A dimension's first topics wait for MIN_FIT_SIZE texts (the Unclustered row says how many more).
    fitted = config.topic_model(min_fit_size=eng.MIN_FIT_SIZE).fit(X[~foreign])
    labels, C, sims, by = _with_other_languages(fitted, X, foreign, config.assign_threshold)

    old_ids, old_C, _ = _load_centroids(con, pid, field)
    old_rows = con.execute(
        "select event_id, topic_id from pipeline.event_topics where project_id = ? and field = ? "
        "and topic_id >= 0",
        [pid, field],
    ).fetchall()
    position = {t: i for i, t in enumerate(old_ids)}
    old_members = [set() for _ in old_ids]
    old_topic_of = {}
    for e, t in old_rows:
        if t in position:
            old_members[position[t]].add(e)
            old_topic_of[e] = t
    next_id = state["next_topic_id"] if state else 0
    if state and state["model"] != model:
        old_C = np.zeros((len(old_ids), X.shape[1]), dtype=np.float32)  # other space: members only
    folded = 0
    while True:
        members_of = _members(event_ids, labels, C.shape[0])
        match = match_topics(old_ids, old_C, old_members, C, members_of, next_id=next_id)
        # Topic-level hysteresis: a split-off piece still close to the topic it left is folded back, so
        # more data alone does not break ids; only a distinct piece becomes a topic of its own.
        folds = {j: keeper for j, keeper in match.split_from.items()
                 if float(C[j] @ C[keeper]) >= config.split_fold_cosine}
        if not folds:
            break
        labels, C, fold_sims = eng.fold_clusters(X, labels, folds)
        sims = np.where(labels >= 0, fold_sims, sims)
        folded += len(folds)
    k = C.shape[0]
    topic_ids = np.asarray(match.new_ids, dtype=np.int64)
    topic_of = np.where(labels >= 0, topic_ids[np.maximum(labels, 0)] if k else -1, UNCLUSTERED_ID)

    # Hysteresis: a text whose topic continued stays in it unless another topic is clearly closer.
    kept = 0
    if old_topic_of and k:
        row_of_topic = {int(t): j for j, t in enumerate(topic_ids)}
        prev = np.array([row_of_topic.get(old_topic_of.get(e, -2), -1) for e in event_ids], dtype=np.int64)
        cand = (prev >= 0) & (topic_of != np.where(prev >= 0, topic_ids[np.maximum(prev, 0)], -3))
        if cand.any():
            rows = np.flatnonzero(cand)
            prev_sim = np.einsum("ij,ij->i", unit_rows(X[rows]), C[prev[rows]])
            stay = (prev_sim >= sims[rows] - config.hysteresis_margin) & (
                prev_sim >= config.outlier_threshold
            )
            rows = rows[stay]
            topic_of[rows] = topic_ids[prev[rows]]
            sims[rows] = prev_sim[stay]
            by[rows] = eng.ASSIGNED_KEPT
            kept = int(rows.size)

    _exec(con, "delete from pipeline.event_topics where project_id = ? and field = ?", [pid, field])
    _insert_event_topics(con, pid, field, event_ids, topic_of, by, sims, run_id)

    # Centroids and descriptions of the live topics; descriptions stay when the representative texts do.
    previous_desc = {
        int(t): (reps, kw, key)
        for t, reps, kw, key in con.execute(
            "select topic_id, representative_hashes, keywords, label_key from pipeline.topic_centroids "
            "where project_id = ? and field = ?",
            [pid, field],
        ).fetchall()
    }
    _exec(con, "delete from pipeline.topic_centroids where project_id = ? and field = ?", [pid, field])
    hashes = _text_hashes(con, pid, field, event_ids)
    for j in range(k):
        tid = int(topic_ids[j])
        members = np.flatnonzero(topic_of == tid)
        reps = _representatives(members, sims, hashes)
        old = previous_desc.get(tid)
        keywords, label_key = (old[1], old[2]) if old and json.loads(old[0] or "[]") == reps else (None, None)
        _exec(con,
            "insert into pipeline.topic_centroids values (?, ?, ?, ?, ?, ?, ?, ?)",
            [pid, field, tid, C[j].tolist(), int(members.size), json.dumps(reps), keywords,
             label_key],
        )

    # Topic rows: live ones active, the rest retired or merged (never deleted, ids never reused).
    for tid in (int(t) for t in topic_ids):
        _upsert_topic(con, pid, field, tid, run_id=run_id)
    for tid in match.retired:
        _set_status(con, pid, field, tid, "retired", run_id)
    for tid in match.merged_into:
        _set_status(con, pid, field, tid, "merged", run_id)

    _exec(con,
        "delete from pipeline.topic_lineage where run_id = ? and project_id = ? and field = ?",
        [run_id, pid, field],
    )
    now = _now()
    for row in match.lineage:
        _exec(con,
            "insert into pipeline.topic_lineage values (?, ?, ?, ?, ?, ?, ?)",
            [run_id, pid, field, row.topic_id, row.change, json.dumps(list(row.related)), now],
        )

    live = topic_of >= 0
    # Baseline of the similarity-drop rule: mean similarity of every text to its nearest topic.
    mean_sim = float(sims.mean()) if k else None
    pending = int((~live).sum())
    _save_model_state(
        con, pid, field, model=model, run_id=run_id, n_fit=len(event_ids),
        min_cluster_size=fitted.min_cluster_size_, mean_similarity=mean_sim, next_topic_id=match.next_id,
        pool_attempt_size=pending, config=config,
    )
    _refresh_sizes(con, pid, field, run_id)
    changes: dict[str, int] = {}
    for row in match.lineage:
        changes[row.change] = changes.get(row.change, 0) + 1
    return {
        "action": "refit",
        "reason": reason,
        "texts": len(event_ids),
        "topics": k,
        "min_cluster_size": fitted.min_cluster_size_,
        "min_cluster_size_from": fitted.size_source_,  # "rule" of n, "subjects" the texts show, or "given"
        "lineage": changes,
        "kept_by_hysteresis": kept,
        "splits_folded": folded,
        "unclustered_share": pending / len(event_ids) if event_ids else 0.0,
        "mean_similarity": mean_sim,
    }


def _other_language_rows(con, pid: str, field: str, event_ids: Sequence[str]) -> np.ndarray:
    """Mask of the texts (in ``event_ids`` order) confidently in a language other than English."""
    from turret.language import is_other_language

    rows = dict(con.execute(
        "select event_id, language from pipeline.event_languages where project_id = ? and field = ? "
        "and language not in ('en', 'und')",
        [pid, field],
    ).fetchall())
    return np.array([is_other_language(rows.get(e)) for e in event_ids], dtype=bool)


def _with_other_languages(fitted, X: np.ndarray, foreign: np.ndarray, threshold: float):
    """The fit's (labels, centroids, similarities, assigned_by) over all rows: the fitted rows as fitted,
    the other-language rows in their nearest topic when at least ``threshold`` close, else pending."""
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    sims = np.full(n, -1.0, dtype=np.float32)
    by = np.full(n, eng.ASSIGNED_PENDING, dtype=object)
    labels[~foreign], sims[~foreign], by[~foreign] = fitted.labels_, fitted.similarities_, fitted.assigned_by_
    if foreign.any():
        idx, sim = eng.nearest_centroid(X[foreign], fitted.centroids_)
        take = (idx >= 0) & (sim >= threshold)
        labels[foreign] = np.where(take, idx, -1)
        sims[foreign] = sim
        by[foreign] = np.where(take, eng.ASSIGNED_NEAREST, eng.ASSIGNED_PENDING)
    return labels, fitted.centroids_, sims, by


def _discover_from_pool(con, pid, field, *, run_id, model, config, state) -> int:
    """Cluster the pending pool alone once it is big enough; its clusters become new topics."""
    pool_size = _count(con, "pipeline.event_topics", pid, field, "topic_id = -1")
    mcs = int(state["min_cluster_size"])
    too_small = pool_size < max(config.pool_min, 2 * mcs)
    if too_small or pool_size < config.pool_growth * state["pool_attempt_size"]:
        return 0
    rows = con.execute(
        "select event_id from pipeline.event_topics where project_id = ? and field = ? and topic_id = -1",
        [pid, field],
    ).fetchall()
    pool_ids, X = _load_vectors(con, pid, field, model, event_ids=[r[0] for r in rows])
    # Texts in other languages stay pending: in the pool alone they would make topics of their language.
    english = ~_other_language_rows(con, pid, field, pool_ids)
    pool_ids, X = [e for e, keep in zip(pool_ids, english, strict=True) if keep], X[english]
    if len(pool_ids) < max(config.pool_min, 2 * mcs):
        return 0
    # Pool texts are new texts: they join a discovered topic on the same terms as joining an old one
    # (assign_threshold), so a small pool does not smear its few real subjects over its noise.
    threshold = max(config.outlier_threshold, config.assign_threshold)
    # Excess-of-mass selection, not leaf: the pool is mostly noise around a few new subjects, and leaf
    # selection cuts a small subject into pieces (or makes topics of the noise).
    fitted = config.topic_model(
        min_cluster_size=mcs, outlier_threshold=threshold, cluster_selection_method="eom"
    ).fit(X)
    labels, centroids, sims = fitted.labels_, fitted.centroids_, fitted.similarities_
    n_found = int(centroids.shape[0])
    next_id = int(state["next_topic_id"])
    found = 0
    if n_found:
        hashes = _text_hashes(con, pid, field, pool_ids)
        ids = np.arange(next_id, next_id + n_found)
        live = labels >= 0
        topic_of = np.where(live, ids[np.maximum(labels, 0)], UNCLUSTERED_ID)
        _insert_event_topics(
            con, pid, field, [e for e, ok in zip(pool_ids, live, strict=True) if ok], topic_of[live],
            np.where(fitted.assigned_by_[live] == eng.ASSIGNED_PENDING, eng.ASSIGNED_CLUSTER,
                     fitted.assigned_by_[live]),
            sims[live], run_id, replace=True,
        )
        now = _now()
        for j, tid in enumerate(int(t) for t in ids):
            members = np.flatnonzero(labels == j)
            reps = _representatives(members, sims, hashes)
            _exec(con,
                "insert into pipeline.topic_centroids values (?, ?, ?, ?, ?, ?, null, null)",
                [pid, field, tid, centroids[j].tolist(), int(members.size), json.dumps(reps)],
            )
            _upsert_topic(con, pid, field, tid, run_id=run_id)
            _exec(con,
                "insert into pipeline.topic_lineage values (?, ?, ?, ?, 'new', '[]', ?)",
                [run_id, pid, field, tid, now],
            )
        found = n_found
        next_id += found
    _exec(con,
        "update pipeline.topic_models set next_topic_id = ?, pool_attempt_size = ? "
        "where project_id = ? and field = ?",
        [next_id, int((labels < 0).sum()), pid, field],
    )
    return found


# --------------------------------------------------------------------------------------------- themes


def _assign_themes(con, pid: str, field: str) -> None:
    """Group the live topics into themes (``assign_themes``), conversational topics into one theme of their
    own named ``CONVERSATIONAL_THEME_LABEL``; a group keeps the id of the old theme it shares most topics with
    (``match_theme_ids``), and a topic stays in its old theme unless another is clearly closer
    (``keep_previous_themes``), so theme ids hold from run to run like topic ids. The other themes are named
    by label_topics. Needs the topics' kinds (``_mark_kinds``) first."""
    from turret.conversation import CONVERSATIONAL_THEME_DESCRIPTION, CONVERSATIONAL_THEME_LABEL

    ids, C, n = _load_centroids(con, pid, field)
    chit_chat = {t for (t,) in con.execute(
        "select topic_id from pipeline.topics where project_id = ? and field = ? and kind = 'conversational'",
        [pid, field]).fetchall()}
    apart = np.array([t in chit_chat for t in ids], dtype=bool)
    groups = assign_themes(C, n, apart=apart)
    previous = dict(con.execute(
        "select topic_id, theme_id from pipeline.topics where project_id = ? and field = ? "
        "and theme_id is not null and status = 'active'",
        [pid, field],
    ).fetchall())
    row = _one(con, "select next_theme_id from pipeline.topic_models where project_id = ? and field = ?",
               [pid, field])
    first_fresh = int(row[0] or 0) if row else 0
    group_ids, _ = match_theme_ids(previous, groups, ids, first_fresh)
    group_of_theme = {theme: g for g, theme in enumerate(group_ids)}
    old_group = np.asarray([group_of_theme.get(previous.get(t, -1), -1) for t in ids], dtype=np.int64)
    groups, _kept = keep_previous_themes(C, groups, old_group, apart=apart)
    group_ids, next_theme = match_theme_ids(previous, groups, ids, first_fresh)
    themes = np.asarray([group_ids[g] for g in groups.tolist()], dtype=np.int64)
    _exec(con, "update pipeline.topic_models set next_theme_id = ? where project_id = ? and field = ?",
          [next_theme, pid, field])
    _exec(con, "delete from pipeline.themes where project_id = ? and field = ?", [pid, field])
    small_talk = set(themes[apart].tolist())
    for theme in sorted(set(themes.tolist())):
        label, description = ((CONVERSATIONAL_THEME_LABEL, CONVERSATIONAL_THEME_DESCRIPTION)
                              if theme in small_talk else (f"Theme {theme}", None))
        _exec(con, "insert into pipeline.themes values (?, ?, ?, ?, ?)",
              [pid, field, theme, label, description])
    _exec(con,
        "update pipeline.topics set theme_id = null where project_id = ? and field = ?", [pid, field]
    )
    for tid, theme in zip(ids, themes.tolist(), strict=True):
        _exec(con,
            "update pipeline.topics set theme_id = ? where project_id = ? and field = ? and topic_id = ?",
            [theme, pid, field, tid],
        )


# --------------------------------------------------------------------------------------------- labels


def label_topics(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, labeler: Any = None
) -> dict:
    """Name topics and themes whose description changed; unchanged ones keep their label (no flicker).

    Representative texts are the members closest to the centroid (already scrubbed in event_texts);
    keywords come from c-TF-IDF over each topic's closest members. Labels are looked up in
    ``pipeline.topic_label_cache`` by ``label_cache_key`` before the labeler is asked.
    """
    from turret import label as labelling

    if not run_id or not isinstance(run_id, str):
        raise TopicsError("run_id must be a non-empty string")
    ensure_state(con)
    labeler = labeler or labelling.get_labeler(settings)
    labeler_id = _labeler_id(labeler)
    started = _now()
    stats: dict[str, Any] = {"labeler": labeler_id, "dimensions": {}}
    dims = con.execute(
        "select distinct project_id, field from pipeline.topic_centroids order by 1, 2"
    ).fetchall()
    for pid, field in dims:
        stats["dimensions"][f"{pid}/{field}"] = _label_dimension(
            con, pid, field, labeler, labeler_id, labelling
        )
    _record_run(con, run_id, "labels", started, {"labels": stats})
    return stats


def _label_dimension(con, pid, field, labeler, labeler_id, labelling) -> dict:
    rows = con.execute(
        "select c.topic_id, c.representative_hashes, c.keywords, c.label_key, t.label_source, t.theme_id "
        "from pipeline.topic_centroids c join pipeline.topics t using (project_id, field, topic_id) "
        "where c.project_id = ? and c.field = ? order by c.topic_id",
        [pid, field],
    ).fetchall()
    if not rows:
        return {"topics": 0}
    texts = _texts_by_hash(con, [h for r in rows for h in json.loads(r[1] or "[]")])
    missing_kw = [r[0] for r in rows if r[2] is None]
    if missing_kw:
        samples = _keyword_samples(con, pid, field)
        keywords = labelling.ctfidf_keywords({str(t): samples.get(t, []) for t in samples}, top_n=10)
        for tid in missing_kw:
            _exec(con,
                "update pipeline.topic_centroids set keywords = ? "
                "where project_id = ? and field = ? and topic_id = ?",
                [json.dumps(keywords.get(str(tid), [])), pid, field, tid],
            )
    rows = con.execute(
        "select c.topic_id, c.representative_hashes, c.keywords, c.label_key, t.label_source, t.theme_id "
        "from pipeline.topic_centroids c join pipeline.topics t using (project_id, field, topic_id) "
        "where c.project_id = ? and c.field = ? order by c.topic_id",
        [pid, field],
    ).fetchall()
    docs = {}
    for tid, reps, kw, _label_key, _source, _theme in rows:
        docs[tid] = labelling.TopicDocuments(
            key=str(tid),
            representative_docs=[texts[h] for h in json.loads(reps or "[]") if h in texts],
            keywords=list(json.loads(kw or "[]")),
        )
    todo = []
    for tid, _reps, _kw, label_key, source, _theme in rows:
        key = labelling.label_cache_key(docs[tid], labeler_id)
        if key == label_key and source == labeler_id:
            continue  # unchanged since this labeler named it (a fallback or "pending" label is retried)
        todo.append((tid, key))
    # Keyword labels are ranked by meaning against the topic's centroid (a theme's against its members'),
    # and phrased from the topic's closest members; neither is part of the cache key (the representative
    # texts and keywords are).
    centroid_ids, C, _ = _load_centroids(con, pid, field)
    centroid_of = dict(zip(centroid_ids, C, strict=True))
    for tid, doc in docs.items():
        doc.centroid = centroid_of[tid].tolist() if tid in centroid_of else None
    if todo:
        samples = _keyword_samples(con, pid, field)
        for tid, _key in todo:
            docs[tid].texts = samples.get(tid, [])
    # No two live topics of a dimension share a label: the ones kept from earlier runs are reserved.
    relabelled = {t for t, _ in todo}
    reserved = [label for tid, label in con.execute(
        "select topic_id, label from pipeline.topics where project_id = ? and field = ? and topic_id >= 0 "
        "and status = 'active'", [pid, field]).fetchall() if tid not in relabelled]
    named = _name(con, labeler, labeler_id, [(docs[t], k) for t, k in todo], reserved=reserved)
    fallbacks = 0
    for (tid, key), result in zip(todo, named, strict=True):
        _exec(con,
            "update pipeline.topics set label = ?, description = ?, keywords = ?, label_source = ? "
            "where project_id = ? and field = ? and topic_id = ?",
            [result[0], result[1], json.dumps(docs[tid].keywords), result[2], pid, field, tid],
        )
        # A fallback label (the LLM failed, the keyword label stands in) is shown but not remembered under
        # the labeler's key: without the key the next run asks the labeler again.
        own = result[2] == labeler_id
        fallbacks += not own
        _exec(con,
            "update pipeline.topic_centroids set label_key = ? where project_id = ? and field = ? "
            "and topic_id = ?",
            [key if own else None, pid, field, tid],
        )

    # Themes: the labeler over what their member topics say (theme_documents); the chit-chat theme keeps its
    # name (_assign_themes).
    small_talk = {theme for (theme,) in con.execute(
        "select theme_id from pipeline.topics where project_id = ? and field = ? and theme_id is not null "
        "and topic_id >= 0 group by theme_id having bool_and(kind = 'conversational')",
        [pid, field]).fetchall()}
    theme_docs = theme_documents(docs, {tid: theme for tid, *_rest, theme in rows if theme not in small_talk})
    theme_items = sorted(theme_docs.items())
    theme_named = _name(
        con, labeler, labeler_id, [(d, labelling.label_cache_key(d, labeler_id)) for _, d in theme_items]
    )
    for (theme, _d), result in zip(theme_items, theme_named, strict=True):
        _exec(con,
            "update pipeline.themes set label = ?, description = ? where project_id = ? and field = ? "
            "and theme_id = ?",
            [result[0], result[1], pid, field, theme],
        )
    return {"topics": len(rows), "relabelled": len(todo), "fallback_labels": fallbacks,
            "themes": len(theme_items)}


def theme_documents(docs: Mapping[int, Any], theme_of: Mapping[int, int | None]) -> dict[int, Any]:
    """What the labeler sees of each theme, built from its member topics in id order (not size order, so
    hourly size changes do not relabel a theme):

    - representative docs: the closest text of each member topic; keywords: those most members share;
    - texts: the members' samples taken in turn (each topic's closest text, then each one's second...), so
      a keyword label is phrased from every facet of the theme, not from its biggest topic;
    - centroid: the unweighted mean of the members' unit centroids (when every member has one), the
      direction the members share, against which candidate phrases are ranked.

    ``docs``: topic id -> ``TopicDocuments``; ``theme_of``: topic id -> theme id.
    """
    from itertools import chain, zip_longest

    from turret import label as labelling

    members_of: dict[int, list[int]] = {}
    for tid in sorted(theme_of):
        if theme_of[tid] is not None and tid in docs:
            members_of.setdefault(int(theme_of[tid]), []).append(tid)
    out = {}
    for theme, tids in members_of.items():
        shared: dict[str, int] = {}
        for tid in tids:
            for word in docs[tid].keywords:
                shared[word] = shared.get(word, 0) + 1
        ranked = sorted(shared, key=lambda w: -shared[w])  # stable: first seen wins ties
        reps = [docs[t].representative_docs[0] for t in tids if docs[t].representative_docs]
        in_turn = chain.from_iterable(zip_longest(*(docs[t].sample for t in tids)))
        texts = list(dict.fromkeys(t for t in in_turn if t is not None))[:KEYWORD_SAMPLE]
        centroids = [docs[t].centroid for t in tids]
        centroid = None
        if all(c is not None for c in centroids):
            mean = np.mean(np.asarray(centroids, dtype=np.float64), axis=0)
            norm = float(np.linalg.norm(mean))
            centroid = (mean / norm).tolist() if norm > 0 else None
        out[theme] = labelling.TopicDocuments(f"theme {theme}", reps[:REPRESENTATIVE_DOCS], ranked[:10],
                                              texts=texts, centroid=centroid)
    return out


def _name(
    con, labeler, labeler_id: str, items: Sequence[tuple[Any, str]], reserved: Sequence[str] = ()
) -> list[tuple[str, str | None, str]]:
    """(label, description, source) per item: from the cache, else from one labeler call.

    Only labels the labeler made itself (source ``labeler_id``) are cached. A fallback (an LLM labeler
    that failed and answered with the keyword label, source ``keywords``) is returned but not cached:
    the cache key names the LLM, so caching it would pin the keyword label until the topic changes.
    """
    out: list[tuple[str, str | None, str] | None] = []
    ask = []
    for docs, key in items:
        hit = _one(con,
            "select label, description, label_source from pipeline.topic_label_cache where cache_key = ? "
            "and label_source = ?",  # fallbacks cached by older versions are misses
            [key, labeler_id],
        )
        out.append(tuple(hit) if hit else None)
        if not hit:
            ask.append((len(out) - 1, docs, key))
    if ask:
        taken = [*reserved, *(hit[0] for hit in out if hit)]
        labels = labeler.label([docs for _, docs, _ in ask], reserved=taken)
        if len(labels) != len(ask):
            raise TopicsError(f"labeler returned {len(labels)} labels for {len(ask)} topics")
        now = _now()
        for (pos, _docs, key), lab in zip(ask, labels, strict=True):
            out[pos] = (lab.label, lab.description, lab.source)
            if lab.source != labeler_id:
                continue  # a fallback: ask again next run
            _exec(con,
                "insert or replace into pipeline.topic_label_cache values (?, ?, ?, ?, ?)",
                [key, lab.label, lab.description, lab.source, now],
            )
    return out  # type: ignore[return-value]


def _labeler_id(labeler: Any) -> str:
    for attr in ("labeler_id", "id", "name"):
        value = getattr(labeler, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(labeler).__name__


def _keyword_samples(con, pid, field) -> dict[int, list[str]]:
    rows = con.execute(
        """
        select et.topic_id, t.text
        from pipeline.event_topics et
        join pipeline.event_texts t using (project_id, event_id, field)
        where et.project_id = ? and et.field = ? and et.topic_id >= 0
        qualify row_number() over (partition by et.topic_id order by et.similarity desc, et.event_id) <= ?
        """,
        [pid, field, KEYWORD_SAMPLE],
    ).fetchall()
    out: dict[int, list[str]] = {}
    for tid, text in rows:
        out.setdefault(int(tid), []).append(text)
    return out


# --------------------------------------------------------------------------------------------- helpers


def _members(event_ids: Sequence[str], labels: np.ndarray, k: int) -> list[set]:
    members: list[set] = [set() for _ in range(k)]
    for e, t in zip(event_ids, labels, strict=True):
        if t >= 0:
            members[t].add(e)
    return members


def _exec(con, sql: str, params: Sequence[Any] | None = None) -> None:
    """Run a statement to completion (DuckDB 2 keeps results open until fetched)."""
    con.execute(sql, params or []).fetchall()


def _one(con, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
    """The first row of a query or None, with the result fully consumed."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _load_vectors(con, pid, field, model, *, only_unassigned: bool = False, event_ids=None):
    """(event_ids, unit vectors) of a dimension's texts, ordered by event id; only those with a vector.

    ``only_unassigned``/``event_ids`` first pick the rows by id (no vectors read), then fetch the vectors
    of just those text hashes with a semi-join, so an hourly run reads the new texts' vectors only.
    """
    import pandas as pd

    if not only_unassigned and event_ids is None:
        result = con.execute(
            "select t.event_id, e.vector from pipeline.event_texts t "
            "join pipeline.embeddings e on e.text_hash = t.text_hash and e.model = ? "
            "where t.project_id = ? and t.field = ? order by t.event_id",
            [model, pid, field],
        ).fetchnumpy()
        ids = result["event_id"].tolist()
        vectors = np.stack(result["vector"]) if ids else None
        return (ids, unit_rows(vectors)) if ids else ([], np.zeros((0, 1), dtype=np.float32))

    if event_ids is not None:
        con.register("_turret_topic_events", pd.DataFrame({"event_id": list(event_ids)}))
        try:
            rows = con.execute(
                "select t.event_id, t.text_hash from pipeline.event_texts t "
                "where t.project_id = ? and t.field = ? "
                "and t.event_id in (select event_id from _turret_topic_events) order by t.event_id",
                [pid, field],
            ).fetchall()
        finally:
            con.unregister("_turret_topic_events")
    else:
        rows = con.execute(
            "select event_id, text_hash from pipeline.event_texts where project_id = ? and field = ? "
            "and event_id not in (select event_id from pipeline.event_topics where project_id = ? "
            "and field = ?) order by event_id",
            [pid, field, pid, field],
        ).fetchall()
    if not rows:
        return [], np.zeros((0, 1), dtype=np.float32)
    con.register("_turret_topic_hashes", pd.DataFrame({"text_hash": sorted({h for _, h in rows})}))
    try:
        found = con.execute(
            "select text_hash, vector from pipeline.embeddings where model = ? "
            "and text_hash in (select text_hash from _turret_topic_hashes)",
            [model],
        ).fetchnumpy()
    finally:
        con.unregister("_turret_topic_hashes")
    position = {h: i for i, h in enumerate(found["text_hash"].tolist())}
    kept = [(e, position[h]) for e, h in rows if h in position]
    if not kept:
        return [], np.zeros((0, 1), dtype=np.float32)
    vectors = np.stack(found["vector"])
    return [e for e, _ in kept], unit_rows(vectors[[i for _, i in kept]])


def _load_centroids(con, pid, field) -> tuple[list[int], np.ndarray, np.ndarray]:
    rows = con.execute(
        "select topic_id, centroid, n_members from pipeline.topic_centroids "
        "where project_id = ? and field = ? order by topic_id",
        [pid, field],
    ).fetchall()
    if not rows:
        return [], np.zeros((0, 1), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return (
        [int(r[0]) for r in rows],
        np.asarray([r[1] for r in rows], dtype=np.float32),
        np.asarray([r[2] for r in rows], dtype=np.int64),
    )


def _text_hashes(con, pid, field, event_ids: Sequence[str]) -> list[str]:
    """The text hash of each event id, in order."""
    import pandas as pd

    con.register("_turret_topic_events", pd.DataFrame({"event_id": list(event_ids)}))
    try:
        mapping = dict(con.execute(
            "select t.event_id, t.text_hash from pipeline.event_texts t join _turret_topic_events w "
            "using (event_id) where t.project_id = ? and t.field = ?",
            [pid, field],
        ).fetchall())
    finally:
        con.unregister("_turret_topic_events")
    return [mapping[e] for e in event_ids]


def _texts_by_hash(con, hashes: Sequence[str]) -> dict[str, str]:
    if not hashes:
        return {}
    import pandas as pd

    con.register("_turret_topic_hashes", pd.DataFrame({"text_hash": sorted(set(hashes))}))
    try:
        return dict(con.execute(
            "select t.text_hash, min(t.text) from pipeline.event_texts t join _turret_topic_hashes h "
            "using (text_hash) group by t.text_hash"
        ).fetchall())
    finally:
        con.unregister("_turret_topic_hashes")


def _representatives(members: np.ndarray, sims: np.ndarray, hashes: Sequence[str]) -> list[str]:
    """Distinct text hashes of the members closest to the centroid (ties by position: deterministic)."""
    order = members[np.lexsort((members, -sims[members]))]
    out: list[str] = []
    for m in order:
        h = hashes[m]
        if h not in out:
            out.append(h)
            if len(out) == REPRESENTATIVE_DOCS:
                break
    return out


def _insert_event_topics(con, pid, field, event_ids, topic_of, by, sims, run_id, *, replace=False) -> None:
    import pandas as pd

    if len(event_ids) == 0:
        return
    frame = pd.DataFrame({
        "event_id": list(event_ids),
        "topic_id": np.asarray(topic_of, dtype=np.int64),
        "assigned_by": [str(b) for b in by],
        "similarity": np.round(np.asarray(sims, dtype=np.float64), 6),
    })
    con.register("_turret_event_topics", frame)
    try:
        verb = "insert or replace" if replace else "insert"
        _exec(con,
            f"{verb} into pipeline.event_topics select ?, event_id, ?, topic_id::integer, assigned_by, "
            "similarity, ? from _turret_event_topics",
            [pid, field, run_id],
        )
    finally:
        con.unregister("_turret_event_topics")


def _upsert_topic(con, pid, field, tid, *, run_id, status: str = "active") -> None:
    exists = _one(con,
        "select status from pipeline.topics where project_id = ? and field = ? and topic_id = ?",
        [pid, field, tid],
    )
    if exists is None:
        _exec(con,
            "insert into pipeline.topics (project_id, field, topic_id, label, description, keywords, "
            "label_source, theme_id, size, status, created_run_id, updated_run_id) "
            "values (?, ?, ?, ?, null, null, 'pending', null, 0, ?, ?, ?)",
            [pid, field, tid, f"Topic {tid}", status, run_id, run_id],
        )
    elif exists[0] != status:
        _set_status(con, pid, field, tid, status, run_id)


def _set_status(con, pid, field, tid, status, run_id) -> None:
    _exec(con,
        "update pipeline.topics set status = ?, updated_run_id = ?, theme_id = case when ? = 'active' "
        "then theme_id end where project_id = ? and field = ? and topic_id = ?",
        [status, run_id, status, pid, field, tid],
    )


def _mark_kinds(con, pid: str, field: str, prototypes: Mapping[str, np.ndarray] | None) -> None:
    """``kind`` of every live topic: ``conversational`` when its centroid is a greeting, thanks or yes/no
    (``turret.conversation.conversational_kind_of_topics``, the rule the journey model uses), else
    ``subject``; the Unclustered row is ``unclustered``."""
    from turret.conversation import conversational_kind_of_topics

    ids, C, _ = _load_centroids(con, pid, field)
    kinds = conversational_kind_of_topics(C, prototypes) if (prototypes and ids) else [None] * len(ids)
    chit_chat = [t for t, k in zip(ids, kinds, strict=True) if k is not None]
    _exec(con,
        "update pipeline.topics set kind = case when topic_id = -1 then 'unclustered' "
        "when list_contains(?::integer[], topic_id) then 'conversational' else 'subject' end "
        "where project_id = ? and field = ?",
        [chit_chat, pid, field],
    )


def fit_progress_note(n_texts: int) -> str | None:
    """What the Unclustered row says while a field has too few texts for topics (``None`` once it has
    enough): how many texts the first fit needs and how many more are missing."""
    need = eng.MIN_FIT_SIZE - int(n_texts)
    if need <= 0:
        return None
    return (f"Topics appear once this field has {eng.MIN_FIT_SIZE} texts: {n_texts} so far, "
            f"{need} more needed.")


def _refresh_sizes(con, pid, field, run_id) -> None:
    """Sizes from event_topics (one grouped scan of the dimension's assignment rows, no vectors), plus the
    always-present Unclustered row. Only rows whose size changed get this run's id."""
    _exec(con,
        "insert into pipeline.topics (project_id, field, topic_id, label, description, keywords, "
        "label_source, theme_id, size, status, created_run_id, updated_run_id) "
        "values (?, ?, -1, ?, ?, '[]', 'fixed', null, 0, 'active', ?, ?) on conflict do nothing",
        [pid, field, UNCLUSTERED_LABEL, UNCLUSTERED_DESCRIPTION, run_id, run_id],
    )
    note = fit_progress_note(_count(con, "pipeline.event_texts", pid, field))
    _exec(con,
        "update pipeline.topics set description = ? where project_id = ? and field = ? and topic_id = -1 "
        "and description is distinct from ?",
        [note or UNCLUSTERED_DESCRIPTION, pid, field, note or UNCLUSTERED_DESCRIPTION],
    )
    _exec(con,
        """
        update pipeline.topics t
        set size = coalesce(s.n, 0), updated_run_id = ?
        from (
            select t2.topic_id, count(et.event_id) as n
            from pipeline.topics t2
            left join pipeline.event_topics et
              on et.project_id = t2.project_id and et.field = t2.field and et.topic_id = t2.topic_id
            where t2.project_id = ? and t2.field = ?
            group by t2.topic_id
        ) s
        where t.project_id = ? and t.field = ? and t.topic_id = s.topic_id and t.size <> coalesce(s.n, 0)
        """,
        [run_id, pid, field, pid, field],
    )


def _unclustered_share(con, pid, field) -> float:
    total, pending = _one(con,
        "select count(*), count(*) filter (where topic_id = -1) from pipeline.event_topics "
        "where project_id = ? and field = ?",
        [pid, field],
    )
    return pending / total if total else 0.0


def _count(con, table: str, pid: str, field: str, where: str = "true") -> int:
    return int(_one(con,
        f"select count(*) from {table} where project_id = ? and field = ? and {where}", [pid, field]
    )[0])


def _load_model_state(con, pid, field) -> dict | None:
    row = _one(con,
        "select model, n_fit, min_cluster_size, mean_similarity, next_topic_id, pool_attempt_size "
        "from pipeline.topic_models where project_id = ? and field = ?",
        [pid, field],
    )
    if row is None:
        return None
    keys = ("model", "n_fit", "min_cluster_size", "mean_similarity", "next_topic_id", "pool_attempt_size")
    return dict(zip(keys, row, strict=True))


def _save_model_state(con, pid, field, *, model, run_id, n_fit, min_cluster_size, mean_similarity,
                      next_topic_id, pool_attempt_size, config) -> None:
    _exec(con,
        "insert into pipeline.topic_models (project_id, field, model, fitted_run_id, fitted_at, n_fit, "
        "min_cluster_size, mean_similarity, next_topic_id, pool_attempt_size, params) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (project_id, field) do update set "
        "model = excluded.model, fitted_run_id = excluded.fitted_run_id, fitted_at = excluded.fitted_at, "
        "n_fit = excluded.n_fit, min_cluster_size = excluded.min_cluster_size, "
        "mean_similarity = excluded.mean_similarity, next_topic_id = excluded.next_topic_id, "
        "pool_attempt_size = excluded.pool_attempt_size, params = excluded.params",
        [pid, field, model, run_id, _now(), n_fit, int(min_cluster_size), mean_similarity, int(next_topic_id),
         int(pool_attempt_size), json.dumps(asdict(config), default=str)],
    )


def _record_run(con, run_id: str, kind: str, started: datetime, stats: Mapping[str, Any]) -> None:
    """Merge this step's stats into the run's row (the DAG may have created it), or create the row."""
    row = _one(con, "select stats from pipeline.runs where run_id = ?", [run_id])
    if row is None:
        _exec(con,
            "insert into pipeline.runs (run_id, kind, started_at, finished_at, stats) values (?, ?, ?, ?, ?)",
            [run_id, kind, started, _now(), json.dumps(stats, default=str)],
        )
        return
    merged = json.loads(row[0]) if row[0] else {}
    merged.update(stats)
    _exec(con,
        "update pipeline.runs set stats = ? where run_id = ?", [json.dumps(merged, default=str), run_id]
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

