"""``turret cluster INPUT --field NAME --output OUT``: the topic engine over a file, outside any project.

Reads JSON Lines (``.jsonl``/``.ndjson``) or CSV (``.csv``), scrubs and embeds the field's texts (a progress
bar while embedding), fits topics, names them with the configured labeler (keywords without an LLM), and
writes OUT (``.csv`` or ``.jsonl``): one row per input row in input order with the input's id column when
present, ``topic_id`` (-1 for unclustered) and ``topic_label``. A summary goes to the terminal.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv"}
SUMMARY_TOPICS = 20  # topics listed in the terminal summary; the file has them all


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines or CSV file as dicts; ``click.ClickException`` naming the line on bad input."""
    kind = INPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise click.UsageError(
            f"cannot read {path.name}: the input must end in {', '.join(sorted(INPUT_SUFFIXES))}"
        )
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark, which would rename column one.
        with open(path, encoding="utf-8-sig", newline="") as f:
            if kind == "csv":
                return [dict(row) for row in csv.DictReader(f)]
            rows = []
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise click.ClickException(
                        f"{path.name} line {line_no}: not valid JSON ({exc.msg})"
                    ) from exc
                if not isinstance(row, dict):
                    raise click.ClickException(f"{path.name} line {line_no}: expected a JSON object")
                rows.append(row)
            return rows
    except UnicodeDecodeError:
        raise click.ClickException(f"{path.name} is not UTF-8 text") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Write ``rows`` to ``path`` (CSV or JSON Lines by its suffix); the folder must exist."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        if OUTPUT_SUFFIXES[path.suffix.lower()] == "csv":
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                f.write(json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + "\n")


def _size_note(model: Any) -> str:
    """Where the topic size came from, for the summary."""
    size = model.min_cluster_size_
    if model.size_source_ == "given":
        return f"{size} texts (--min-topic-size)"
    if model.size_source_ == "subjects":
        return f"{size} texts (a third of the subjects of about {model.subject_size_:.0f} texts they show)"
    return f"{size} texts (from the number of texts)"


def topic_documents(texts: Sequence[str], labels: Any, similarities: Any, centroids: Any) -> list[Any]:
    """What the labeler sees of each topic of a fit: its distinct texts closest to its centroid first (the
    sample keyword labels are phrased from), the closest few, c-TF-IDF keywords and the centroid. ``labels``
    and ``similarities`` per text (-1: unclustered), ``centroids`` per topic."""
    import numpy as np

    from turret import label as labelling
    from turret.topics.store import KEYWORD_SAMPLE, REPRESENTATIVE_DOCS

    by_topic: dict[int, dict[str, None]] = {}
    for j in np.argsort(-np.asarray(similarities), kind="stable"):
        if labels[j] >= 0:
            by_topic.setdefault(int(labels[j]), {})[texts[j]] = None  # distinct, closest first
    samples = {str(t): list(v)[:KEYWORD_SAMPLE] for t, v in sorted(by_topic.items())}
    keywords = labelling.ctfidf_keywords(samples, top_n=10)
    return [labelling.TopicDocuments(key=key, representative_docs=sample[:REPRESENTATIVE_DOCS],
                                     keywords=keywords.get(key, []), texts=sample,
                                     centroid=np.asarray(centroids[int(key)]).tolist())
            for key, sample in samples.items()]


def cluster_texts(texts: list[str], *, settings: Any, min_topic_size: int | None = None,
                  embedder: Any = None, labeler: Any = None, progress: bool = True) -> dict[str, Any]:
    """Topic id per text (-1 for empty or unclustered ones), the labels, kinds and themes by topic id, the
    theme labels, and the model.

    Identical texts are embedded once. Topics whose centroid is chit-chat (thanks, greetings, yes/no) get
    kind ``conversational`` by the rule the pipeline uses. Importable so that tests and notebooks get the
    same result as the command.
    """
    import numpy as np

    from turret import label as labelling
    from turret.conversation import (
        CONVERSATIONAL_THEME_LABEL,
        conversational_kind_of_topics,
        prototypes_from_encoder,
    )
    from turret.topics.hierarchy import assign_themes
    from turret.topics.store import (
        DEFAULT_CONFIG,
        UNCLUSTERED_LABEL,
        theme_documents,
    )

    present = [i for i, t in enumerate(texts) if t.strip()]
    unique = sorted({texts[i] for i in present})
    position = {t: j for j, t in enumerate(unique)}
    if embedder is None:
        from turret.embed import get_embedder

        embedder = get_embedder(settings)
    X = embedder.encode(unique, progress=progress)
    weights = np.bincount([position[texts[i]] for i in present], minlength=len(unique))
    # Repeated texts count once per row so that a popular question weighs what it should.
    rows = np.repeat(np.arange(len(unique)), weights)
    model = DEFAULT_CONFIG.topic_model(min_cluster_size=min_topic_size).fit(X[rows])
    topic_of_unique = np.full(len(unique), -1, dtype=np.int64)
    sim_of_unique = np.full(len(unique), -1.0)
    topic_of_unique[rows] = model.labels_
    sim_of_unique[rows] = model.similarities_
    topic_ids = [-1] * len(texts)
    for i in present:
        topic_ids[i] = int(topic_of_unique[position[texts[i]]])

    labels = {-1: UNCLUSTERED_LABEL}
    kinds: dict[int, str] = {-1: "unclustered"}
    themes: dict[int, int | None] = {-1: None}
    theme_labels: dict[int, str] = {}
    if model.n_topics_:
        chit_chat = conversational_kind_of_topics(model.centroids_, prototypes_from_encoder(embedder.encode))
        apart = np.array([kind is not None for kind in chit_chat], dtype=bool)
        theme_of = assign_themes(model.centroids_, model.sizes_, apart=apart)
        for t in range(model.n_topics_):
            kinds[t] = "subject" if chit_chat[t] is None else "conversational"
            themes[t] = int(theme_of[t])
        docs = topic_documents(unique, topic_of_unique, sim_of_unique, model.centroids_)
        labeler = labeler or labelling.get_labeler(settings)
        for doc, named in zip(docs, labeler.label(docs), strict=True):
            labels[int(doc.key)] = named.label
        small_talk = {int(theme_of[t]) for t in np.flatnonzero(apart)}
        theme_labels.update(dict.fromkeys(small_talk, CONVERSATIONAL_THEME_LABEL))
        theme_docs = theme_documents({int(d.key): d for d in docs},
                                     {t: th for t, th in themes.items() if th not in small_talk})
        theme_named = labeler.label([theme_docs[t] for t in sorted(theme_docs)])
        for theme, named in zip(sorted(theme_docs), theme_named, strict=True):
            theme_labels[theme] = named.label
    return {"topic_ids": topic_ids, "labels": labels, "kinds": kinds, "themes": themes,
            "theme_labels": theme_labels, "model": model}


@click.command("cluster")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--field", required=True, help="The column (CSV) or key (JSON Lines) holding the texts.")
@click.option("--output", "-o", "output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the assignments: .csv or .jsonl.")
@click.option("--id-column", default="id", show_default=True,
              help="Copied to the output when the input has it.")
@click.option("--min-topic-size", type=click.IntRange(min=2), default=None,
              help="Smallest topic (hdbscan min_cluster_size). Default: from the number of texts "
                   "(5 up to 1k, 16 at 2k-4k, 55 at 8k-16k), or a third of the subjects the texts "
                   "show where those are smaller.")
def cluster(input_path: Path, field: str, output: Path, id_column: str, min_topic_size: int | None) -> None:
    """Cluster the texts of a file into topics, outside any project."""
    # Every mistake is one line ("Error: ..."), found before minutes of clustering, and creates nothing.
    if not input_path.exists():
        raise click.ClickException(f"input file {input_path} does not exist")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.ClickException(f"cannot write {output.name}: the output must end in .csv or .jsonl")
    if not output.parent.is_dir():
        raise click.ClickException(f"cannot write {output}: the folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise click.ClickException(f"cannot write {output}: the folder {output.parent} is not writable")
    rows = read_rows(input_path)
    if not rows:
        raise click.ClickException(f"{input_path.name} has no rows")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if field not in columns:
        raise click.ClickException(f"unknown field {field!r}: {input_path.name} has {', '.join(columns)}")

    from turret.scrub import scrub
    from turret.settings import Settings

    settings = Settings.from_env()
    raw = [_text(row.get(field)) for row in rows]
    texts = [scrub(t) if settings.scrub_pii else t for t in raw]
    if not any(t.strip() for t in texts):
        raise click.ClickException(f"field {field!r} is empty in every row: nothing to cluster")
    from turret.embed import EmbeddingError

    try:
        result = cluster_texts(texts, settings=settings, min_topic_size=min_topic_size)
    except EmbeddingError as exc:
        raise click.ClickException(str(exc)) from None
    topic_ids, labels = result["topic_ids"], result["labels"]
    kinds, themes, theme_labels = result["kinds"], result["themes"], result["theme_labels"]

    has_id = id_column in columns
    out_columns = ([id_column] if has_id else []) + ["topic_id", "topic_label", "topic_kind", "theme_id",
                                                      "theme_label"]
    out_rows = [
        {**({id_column: row.get(id_column)} if has_id else {}), "topic_id": t, "topic_label": labels[t],
         "topic_kind": kinds[t], "theme_id": themes[t], "theme_label": theme_labels.get(themes[t])}
        for row, t in zip(rows, topic_ids, strict=True)
    ]
    try:
        write_rows(output, out_rows, out_columns)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None

    sizes: dict[int, int] = {}
    for t in topic_ids:
        sizes[t] = sizes.get(t, 0) + 1
    n_topics = len([t for t in sizes if t >= 0])
    click.echo(f"{len(rows)} rows, {n_topics} topics, unclustered {sizes.get(-1, 0) / len(rows):.1%}")
    click.echo(f"smallest topic: {_size_note(result['model'])}")
    ranked = sorted((t for t in sizes if t >= 0), key=lambda t: (-sizes[t], t))
    for t in ranked[:SUMMARY_TOPICS]:
        note = "  (conversational)" if kinds[t] == "conversational" else ""
        click.echo(f"  {t:>4}  {sizes[t]:>6}  {labels[t]}{note}")
    if len(ranked) > SUMMARY_TOPICS:
        click.echo(f"  ... {len(ranked) - SUMMARY_TOPICS} more topics in {output}")
    click.echo(f"wrote {output}")
