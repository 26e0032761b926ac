"""The demo generator's events, landed straight into sealed segments: what the pipeline benchmarks run on.

``land`` writes them as the API would have (one project on the business plan, or a given one), so the
hourly DAG finds them exactly as it finds an hour of real traffic; the API itself is measured by
``bench/ingest.py``. ``distinct_texts`` makes every text distinct, for benchmarks that must not be helped
by the embedding cache (``TURRET_BENCH_DISTINCT_TEXTS=1`` in ``bench e2e`` and ``bench scale``).
"""

from __future__ import annotations

import os
from pathlib import Path


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to 1, true or yes."""
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes")


def demo_events(n_events: int, *, seed: int) -> list:
    """The demo generator's first ``n_events`` events of ``seed`` (enough sessions drawn to have them)."""
    from turret.demo.dataset import generate

    sessions = max(1, n_events // 7)
    events = generate(seed=seed, n_sessions=sessions, n_users=max(10, sessions // 3))
    while len(events) < n_events:
        sessions = int(sessions * n_events / len(events)) + 5
        events = generate(seed=seed, n_sessions=sessions, n_users=max(10, sessions // 3))
    return events[:n_events]


def distinct_texts(events: list) -> int:
    """Make every event's prompt distinct in place (a repeat gets a ticket number); returns the repeats."""
    seen: set[str] = set()
    repeats = 0
    for i, e in enumerate(events):
        prompt = e.metadata.get("prompt")
        if not prompt:
            continue
        if prompt in seen:
            prompt = f"{prompt} (ticket {100000 + i})"
            e.metadata["prompt"] = prompt
            repeats += 1
        seen.add(prompt)
    return repeats


def land(home: Path, n_events: int, *, seed: int, project_id: str | None = None,
         distinct: bool = False) -> tuple[str, int]:
    """``n_events`` demo events of ``seed`` written straight into sealed landing segments of ``home``
    (sessions and event ids tagged with the seed, so two seeds never collide); with ``distinct`` every
    event's text is distinct. Returns the project id and the number of events."""
    from turret import landing
    from turret.controlplane import ControlPlane
    from turret.settings import Settings

    settings = Settings(home=home)
    if project_id is None:
        project, _key = ControlPlane.from_settings(settings).create_project("bench", "business")
        project_id = project.project_id
    events = demo_events(n_events, seed=seed)
    if distinct:
        distinct_texts(events)
    writer = landing.LandingWriter(settings.landing_root)
    now = landing.utc_now()
    try:
        for start in range(0, len(events), 1000):
            writer.append([
                landing.make_record(
                    project_id=project_id, contract="turret", name=e.name, metadata=e.metadata,
                    session_id=f"s{seed}-{e.session_id}", user_id=e.user_id, session_id_generated=False,
                    user_id_generated=False, timestamp=landing.parse_iso(e.timestamp), received_at=now,
                    event_id=f"{e.event_id}-{seed}",
                )
                for e in events[start:start + 1000]
            ])
    finally:
        writer.close()
    return project_id, len(events)
