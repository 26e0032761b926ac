"""The landing store: record format, group-committed writes, sealing, orphan recovery, reading back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from turret import landing
from turret.landing import (
    LandingError,
    LandingWriter,
    iso,
    iter_open_segments,
    iter_sealed_segments,
    make_record,
    new_event_id,
    read_segment,
    seal_idle,
    seal_orphans,
    validate_record,
)


def record(received_at: datetime | None = None, **overrides):
    at = received_at or landing.utc_now()
    values = dict(
        project_id="9b2f3f0e-0000-4000-8000-000000000001",
        contract="turret",
        name="user_prompt",
        metadata={"prompt": "how do I reset my password?", "tokens": 12, "ok": True, "x": None},
        session_id="s1",
        user_id="u1",
        session_id_generated=False,
        user_id_generated=True,
        timestamp=at,
        received_at=at,
        event_id=new_event_id(),
    )
    values.update(overrides)
    return make_record(**values)


def all_lines(root: Path):
    return [line for seg in iter_sealed_segments(root) for line in read_segment(seg)]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def open_segment_by_hand(root: Path, *, pid: int, host: str | None = None, hour: datetime | None = None,
                         started: datetime | None = None, content: bytes = b"") -> Path:
    hour = hour or landing.utc_now()
    started = started or hour
    directory = landing.hour_dir(root, hour)
    directory.mkdir(parents=True, exist_ok=True)
    name = (f"{host or landing.default_host()}-{pid}-{started.strftime('%Y%m%dT%H%M%S%fZ')}"
            "-abcd1234.jsonl.open")
    path = directory / name
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------------------------------------- format


def test_event_ids_are_well_formed_unique_and_time_ordered():
    ids = [new_event_id() for _ in range(5000)]
    assert all(len(i) == 36 and i.startswith("evt_") for i in ids)
    assert all(all(c in "0123456789abcdef" for c in i[4:]) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    # The first 48 bits are the millisecond clock.
    ms = int(ids[-1][4:16], 16)
    assert abs(ms / 1000 - time.time()) < 60


def test_iso_is_utc_with_microseconds_and_z():
    assert iso(datetime(2025, 3, 1, 12, 0, tzinfo=UTC)) == "2025-03-01T12:00:00.000000Z"
    cet = datetime(2025, 3, 1, 13, 0, 0, 5, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert iso(cet) == "2025-03-01T13:00:00.000005Z"
    assert landing.utc_now().tzinfo is not None


@pytest.mark.parametrize("dt, text", [
    (datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "0999-01-02T03:04:05.000006Z"),
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
    (datetime(1970, 1, 1), "1970-01-01T00:00:00.000000Z"),  # naive means UTC
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
])
def test_iso_always_writes_a_four_digit_year_that_reads_back(dt, text):
    assert iso(dt) == text
    assert landing.parse_iso(text) == dt.replace(tzinfo=UTC)


def test_a_record_from_before_year_1000_is_not_quarantined(tmp_path):
    # strftime("%Y") wrote year 999 as "999", which the reader rejects: an acknowledged event quarantined.
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    writer.append([record(timestamp=datetime(999, 6, 1, tzinfo=UTC))])
    writer.close()
    [line] = all_lines(tmp_path)
    assert line.error is None and line.record["timestamp"] == "0999-06-01T00:00:00.000000Z"


def test_timestamp_and_received_at_share_one_formatting_but_differ_when_given():
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    same = record(received_at=at)
    assert same["timestamp"] == same["received_at"] == "2025-03-01T12:00:00.000000Z"
    other = record(received_at=at, timestamp=datetime(2025, 2, 1, tzinfo=UTC))
    assert other["timestamp"] == "2025-02-01T00:00:00.000000Z" and other["received_at"] == same["received_at"]
    later = record(received_at=at + timedelta(microseconds=1))  # the one-entry cache must not answer stale
    assert later["received_at"] == "2025-03-01T12:00:00.000001Z"


def test_event_ids_differ_across_a_fork():
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: ids after the fork, on the same millisecond clock
        try:
            os.write(write_fd, "\n".join(new_event_id() for _ in range(2000)).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    mine = {new_event_id() for _ in range(2000)}
    with os.fdopen(read_fd, "rb") as fh:
        theirs = set(fh.read().decode().split("\n"))
    os.waitpid(pid, 0)
    assert len(theirs) == 2000 and not mine & theirs
    # The per-process part (bits 62..24 of the low half) was drawn again in the child.
    low = lambda i: int(i[-16:], 16) & ((1 << 62) - 1)  # noqa: E731
    assert {low(i) >> 24 for i in mine}.isdisjoint({low(i) >> 24 for i in theirs})


def test_make_record_follows_the_contract():
    rec = record(event_type=None)
    assert rec["v"] == 1 and "payload" not in rec
    assert list(rec) == [
        "v", "event_id", "project_id", "contract", "event_type", "name", "session_id", "user_id",
        "session_id_generated", "user_id_generated", "timestamp", "received_at", "metadata",
    ]
    assert validate_record(rec) is None
    trieve = record(contract="trieve", event_type="search", payload={"query": "x"})
    assert trieve["payload"] == {"query": "x"} and validate_record(trieve) is None


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda r: r.pop("event_id"), "missing key 'event_id'"),
        (lambda r: r.update(v=2), "unsupported format version 2"),
        (lambda r: r.update(v=True), "key 'v' has type bool"),
        (lambda r: r.update(contract="segment"), "unknown contract 'segment'"),
        (lambda r: r.update(metadata={"a": [1]}), "metadata 'a' is a list"),
        (lambda r: r.update(timestamp="yesterday"), "key 'timestamp' is not an ISO 8601 timestamp"),
        (lambda r: r.update(user_id=""), "key 'user_id' is empty"),
        (lambda r: r.update(session_id_generated="no"), "key 'session_id_generated' has type str"),
        (lambda r: r.update(payload=[1]), "key 'payload' must be an object"),
    ],
)
def test_validate_record_names_the_problem(change, reason):
    rec = record()
    change(rec)
    assert reason in validate_record(rec)


def test_validate_record_rejects_non_objects():
    assert validate_record([1]) == "record is a JSON list, not an object"


# --------------------------------------------------------------------------------------------- writing


def test_group_commit_from_many_threads_writes_every_record_once(tmp_path):
    writer = LandingWriter(tmp_path, group_commit_ms=5)
    sent: list[str] = []
    lock = threading.Lock()

    def client():
        for _ in range(40):
            batch = [record() for _ in range(2)]
            writer.append(batch)
            with lock:
                sent.extend(r["event_id"] for r in batch)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Acknowledged means on disk: readable before any sealing.
    on_disk = [json.loads(line)["event_id"] for p in iter_open_segments(tmp_path)
               for line in p.read_text().splitlines()]
    assert sorted(on_disk) == sorted(sent)
    # 640 appends shared far fewer fsyncs.
    assert writer.fsyncs < 16 * 40
    writer.close()
    lines = all_lines(tmp_path)
    assert [rec.error for rec in lines if rec.error] == []
    assert sorted(rec.record["event_id"] for rec in lines) == sorted(sent)
    assert list(iter_open_segments(tmp_path)) == []


def test_segment_layout_and_name(tmp_path):
    at = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)
    writer = LandingWriter(tmp_path, host="web-1.example", clock=lambda: at)
    writer.append([record(received_at=at)])
    (path,) = writer.open_segments()
    assert path.parent == tmp_path / "date=2025-06-30" / "hour=23"
    assert path.name.startswith(f"web-1.example-{os.getpid()}-") and path.name.endswith(".jsonl.open")
    name = landing.SegmentName.parse(path)
    assert name.host == "web-1.example" and name.pid == os.getpid() and not name.sealed
    writer.close()


def test_hour_rollover_seals_the_old_segment(tmp_path, monkeypatch):
    monkeypatch.setattr(landing, "TICK_SECONDS", 0.05)
    now = [datetime(2025, 1, 1, 10, 59, 58, tzinfo=UTC)]
    writer = LandingWriter(tmp_path, clock=lambda: now[0])
    writer.append([record(received_at=now[0])])
    (first,) = writer.open_segments()
    assert first.parent.name == "hour=10"

    now[0] = datetime(2025, 1, 1, 11, 0, 1, tzinfo=UTC)
    writer.append([record(received_at=now[0])])
    (second,) = writer.open_segments()
    assert second.parent.name == "hour=11"
    assert not first.exists() and first.with_name(first.name.removesuffix(".open")).exists()

    # No traffic at all: the idle writer still seals at the next hour, from its own clock.
    now[0] = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    deadline = time.monotonic() + 5
    while writer.open_segments() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.open_segments() == []
    assert [p.parent.name for p in iter_sealed_segments(tmp_path)] == ["hour=10", "hour=11"]
    writer.close()


def test_late_record_of_a_past_hour_goes_to_its_own_hour_and_is_sealed(tmp_path):
    now = datetime(2025, 1, 1, 11, 0, 0, 500, tzinfo=UTC)
    writer = LandingWriter(tmp_path, clock=lambda: now)
    writer.append([record(received_at=now - timedelta(seconds=1)), record(received_at=now)])
    sealed = list(iter_sealed_segments(tmp_path))
    assert [p.parent.name for p in sealed] == ["hour=10"]
    assert [p.parent.name for p in writer.open_segments()] == ["hour=11"]
    writer.close()


def test_seal_is_atomic_and_sealed_segments_never_change(tmp_path):
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    stop = threading.Event()
    sent = []

    def client():
        while not stop.is_set():
            rec = record()
            writer.append([rec])
            sent.append(rec["event_id"])

    seen: dict[Path, bytes] = {}
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        writer.seal()
        for path in iter_sealed_segments(tmp_path):
            # A sealed segment is complete when it first appears (rename happens after fsync).
            seen.setdefault(path, path.read_bytes())
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    writer.close()
    assert len(seen) >= 10
    for path, content in seen.items():
        assert path.read_bytes() == content
        assert content.endswith(b"\n")
    lines = all_lines(tmp_path)
    assert [rec.error for rec in lines if rec.error] == []
    assert sorted(rec.record["event_id"] for rec in lines) == sorted(sent)


def test_seal_request_is_honoured_by_a_live_writer(tmp_path):
    writer = LandingWriter(tmp_path)
    writer.append([record()])
    (path,) = writer.open_segments()
    orphan = open_segment_by_hand(tmp_path, pid=dead_pid(), started=landing.utc_now() - timedelta(seconds=1))
    sealed = landing.request_seal(tmp_path, timeout=5)
    assert sealed == sorted(p.with_name(p.name.removesuffix(".open")) for p in (path, orphan))
    assert landing.read_seal_request(tmp_path) is not None
    # The next append opens a fresh segment, started after the request: it is not sealed again.
    writer.append([record()])
    (fresh,) = writer.open_segments()
    time.sleep(1.3)
    assert fresh.exists()
    writer.close()
    assert len(list(iter_sealed_segments(tmp_path))) == 3


def test_close_is_idempotent_and_later_appends_fail(tmp_path):
    writer = LandingWriter(tmp_path)
    writer.append([record()])
    writer.close()
    writer.close()
    with pytest.raises(LandingError, match="closed"):
        writer.append([record()])
    assert len(list(iter_sealed_segments(tmp_path))) == 1


def test_unserializable_record_is_a_value_error_not_a_storage_error(tmp_path):
    writer = LandingWriter(tmp_path)
    with pytest.raises(ValueError, match="cannot be serialized"):
        writer.append([record(metadata={"x": float("nan")})])
    writer.close()


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), object(), b"bytes", "\ud800"])
def test_every_serialization_failure_is_a_record_error_and_nothing_is_written(tmp_path, bad):
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    good = record()
    # The whole call is refused before anything is queued: the good record beside it is not written either.
    with pytest.raises(landing.RecordError, match="cannot be serialized"):
        writer.append([good, record(metadata={"x": bad})])
    assert issubclass(landing.RecordError, ValueError) and not issubclass(landing.RecordError, LandingError)
    writer.append([good])  # the writer carries on
    writer.close()
    assert [line.record["event_id"] for line in all_lines(tmp_path)] == [good["event_id"]]


def test_lines_queued_during_an_fsync_do_not_wait_for_the_window(tmp_path, monkeypatch):
    # The window (group_commit_ms) is for a writer that was idle; lines that arrive while an fsync runs
    # already form a group and go as soon as it returns.
    writer = LandingWriter(tmp_path, group_commit_ms=1000)
    real_fdatasync = os.fdatasync
    in_fsync = threading.Event()

    def slow_fdatasync(fd):
        in_fsync.set()
        time.sleep(0.2)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    first = threading.Thread(target=writer.append, args=([record()],))
    first.start()
    assert in_fsync.wait(5)
    started = time.monotonic()
    writer.append([record()])  # queued during the first fsync
    waited = time.monotonic() - started
    first.join()
    writer.close()
    assert waited < 0.9, waited  # not the 1 s window
    assert len(all_lines(tmp_path)) == 2


def test_an_uncontended_append_is_written_by_the_callers_own_thread(tmp_path, monkeypatch):
    # Leader/follower group commit: no hand-off to another thread when nobody else is writing.
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    real_fdatasync = os.fdatasync
    syncing_threads = []

    def recording_fdatasync(fd):
        syncing_threads.append(threading.current_thread())
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    writer.append([record()])
    writer.append([record()])
    assert syncing_threads == [threading.current_thread()] * 2
    writer.close()


def test_appends_queued_during_an_fsync_share_the_next_one(tmp_path, monkeypatch):
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    real_fdatasync = os.fdatasync
    first_in_fsync = threading.Event()
    release_first = threading.Event()
    calls = []

    def gated_fdatasync(fd):
        calls.append(fd)
        if len(calls) == 1:
            first_in_fsync.set()
            assert release_first.wait(10)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", gated_fdatasync)
    leader = threading.Thread(target=writer.append, args=([record()],))
    leader.start()
    assert first_in_fsync.wait(5)
    followers = [threading.Thread(target=writer.append, args=([record(), record()],)) for _ in range(3)]
    for t in followers:
        t.start()
    deadline = time.monotonic() + 5
    while len(writer._queue) < 3 and time.monotonic() < deadline:  # all three are waiting their turn
        time.sleep(0.005)
    release_first.set()
    for t in [leader, *followers]:
        t.join(10)
    assert writer.fsyncs == 2 and len(calls) == 2  # the first write, then one for all three followers
    writer.close()
    assert len(all_lines(tmp_path)) == 7


def test_a_writer_used_before_a_fork_starts_afresh_in_the_child(tmp_path):
    writer = LandingWriter(tmp_path, group_commit_ms=0)
    before = record()
    writer.append([before])
    (parent_segment,) = writer.open_segments()
    in_child = record()
    pid = os.fork()
    if pid == 0:  # child: its own segment, named by its own pid; the parent's is left alone
        code = 1
        try:
            writer.append([in_child])
            (child_segment,) = writer.open_segments()
            ok = landing.SegmentName.parse(child_segment).pid == os.getpid() and parent_segment.exists()
            writer.close()
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    after = record()
    writer.append([after])
    assert writer.open_segments() == [parent_segment]
    writer.close()
    ids = sorted(line.record["event_id"] for line in all_lines(tmp_path))
    assert ids == sorted(r["event_id"] for r in (before, in_child, after))
    assert len(list(iter_sealed_segments(tmp_path))) == 2


def test_landing_error_when_the_root_is_not_a_directory(tmp_path):
    root = tmp_path / "landing"
    root.write_text("a file where the landing directory should be")
    writer = LandingWriter(root)
    with pytest.raises(LandingError, match="landing store write failed"):
        writer.append([record()])
    writer.close()


def test_a_failed_write_is_cut_back_and_the_writer_carries_on(tmp_path):
    # A real short write: the file-size limit makes write() fail with EFBIG part-way through a batch.
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_landing import record
        from turret.landing import LandingWriter, LandingError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        writer = LandingWriter({str(tmp_path)!r})
        writer.append([record()])  # opens the segment before the limit applies
        size = len(open(writer.open_segments()[0], "rb").read())
        resource.setrlimit(resource.RLIMIT_FSIZE, (size * 3 + size // 2, resource.RLIM_INFINITY))
        acked, failed = 1, 0
        for _ in range(5):
            try:
                writer.append([record()])
                acked += 1
            except LandingError as exc:
                failed += 1
                assert "File too large" in str(exc), exc
        writer.close()
        print(acked, failed)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    acked, failed = map(int, out.stdout.split())
    assert acked >= 3 and failed >= 1
    lines = all_lines(tmp_path)
    # The half-written line was cut off: only acknowledged, whole lines are in the store.
    assert [rec.error for rec in lines if rec.error] == []
    assert len(lines) == acked


# ----------------------------------------------------------------------------------- recovery, reading


def test_torn_line_is_kept_and_reported(tmp_path):
    good = json.dumps(record()).encode() + b"\n"
    path = open_segment_by_hand(tmp_path, pid=dead_pid(), content=good + b'{"v": 1, "event_id": "evt_')
    (sealed,) = seal_orphans(tmp_path)
    assert sealed == path.with_name(path.name.removesuffix(".open"))
    assert sealed.read_bytes().endswith(b'"evt_')  # content untouched
    lines = list(read_segment(sealed))
    assert lines[0].record is not None and lines[0].error is None
    assert lines[1].record is None and lines[1].line_no == 2
    assert lines[1].error.startswith("torn line: no trailing newline")
    assert lines[1].raw == '{"v": 1, "event_id": "evt_'


def test_torn_line_that_happens_to_be_valid_json_is_still_reported(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps(record()).encode())
    (line,) = read_segment(path)
    assert line.record is None and "torn line" in line.error


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"not json\n", "invalid JSON"),
        (b"\n", "empty line"),
        (b'{"v": 1}\n', "missing key 'event_id'"),
        (b"[1, 2]\n", "record is a JSON list"),
        (b'"\xff\xfe"\n', "invalid UTF-8"),
    ],
)
def test_read_segment_reports_bad_lines(tmp_path, content, reason):
    path = tmp_path / "x.jsonl"
    good = json.dumps(record()).encode() + b"\n"
    path.write_bytes(good + content + good)
    lines = list(read_segment(path))
    assert [rec.line_no for rec in lines] == [1, 2, 3]
    assert lines[0].error is None and lines[2].error is None
    assert reason in lines[1].error and lines[1].record is None


def test_seal_orphans_only_touches_dead_writers_of_this_host(tmp_path):
    dead = open_segment_by_hand(tmp_path, pid=dead_pid(), content=b"")
    alive = open_segment_by_hand(tmp_path, pid=os.getpid(), started=landing.utc_now())
    elsewhere = open_segment_by_hand(tmp_path, pid=dead_pid(), host="other-host")
    sealed = seal_orphans(tmp_path)
    assert sealed == [dead.with_name(dead.name.removesuffix(".open"))]
    assert alive.exists() and elsewhere.exists() and not dead.exists()


def test_a_reused_pid_does_not_keep_an_orphan_open(tmp_path):
    # Our own pid, but the segment was opened long before this process started: pid reuse after a crash.
    reused = open_segment_by_hand(tmp_path, pid=os.getpid(), started=datetime(2001, 1, 1, tzinfo=UTC))
    assert seal_orphans(tmp_path) == [reused.with_name(reused.name.removesuffix(".open"))]


def test_seal_idle_seals_ended_hours_of_dead_or_long_gone_writers(tmp_path):
    now = datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    past = datetime(2025, 1, 1, 11, 10, tzinfo=UTC)
    old = datetime(2025, 1, 1, 9, 10, tzinfo=UTC)
    dead_past = open_segment_by_hand(tmp_path, pid=dead_pid(), hour=past)
    live_past = open_segment_by_hand(tmp_path, pid=os.getpid(), hour=past, started=landing.utc_now())
    other_past = open_segment_by_hand(tmp_path, pid=1, host="other-host", hour=past)
    other_old = open_segment_by_hand(tmp_path, pid=1, host="other-host", hour=old)
    dead_current = open_segment_by_hand(tmp_path, pid=dead_pid(), hour=now)
    sealed = seal_idle(tmp_path, before=now)
    assert sorted(sealed) == sorted(p.with_name(p.name.removesuffix(".open")) for p in (dead_past, other_old))
    assert live_past.exists() and other_past.exists() and dead_current.exists()


def test_iter_sealed_segments_never_yields_open_ones_and_is_sorted(tmp_path):
    for hour in (3, 1, 2):
        writer = LandingWriter(tmp_path)
        writer.append([record(received_at=datetime(2025, 1, 1, hour, tzinfo=UTC))])
        writer.close()
    open_segment_by_hand(tmp_path, pid=os.getpid(), started=landing.utc_now())
    sealed = list(iter_sealed_segments(tmp_path))
    assert [p.parent.name for p in sealed] == ["hour=01", "hour=02", "hour=03"]
    assert all(p.name.endswith(".jsonl") for p in sealed)


def test_describe_segments_counts_lines_and_writers(tmp_path):
    writer = LandingWriter(tmp_path)
    writer.append([record(), record()])
    infos = landing.describe_segments(tmp_path)
    assert [(i.sealed, i.lines, i.writer_alive) for i in infos] == [(False, 2, True)]
    writer.close()
    infos = landing.describe_segments(tmp_path)
    assert [(i.sealed, i.lines) for i in infos] == [(True, 2)]
