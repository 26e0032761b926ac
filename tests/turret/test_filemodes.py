"""Turret's stores are private whatever the umask: folders 0700, files 0600 (landing, control plane,
warehouse); a landing write that fails leaves no empty segment behind."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from turret import filemodes, landing, warehouse
from turret.controlplane import ControlPlane
from turret.settings import Settings


@pytest.fixture(autouse=True)
def open_umask():
    old = os.umask(0o022)  # the usual default: without care, files would be 0644 and folders 0755
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def record() -> dict:
    now = landing.utc_now()
    return landing.make_record(
        project_id="p", contract="turret", name="n", metadata={"prompt": "hi"}, session_id="s", user_id="u",
        session_id_generated=False, user_id_generated=False, timestamp=now, received_at=now,
        event_id=landing.new_event_id(),
    )


def test_private_dir_makes_each_new_folder_0700_and_leaves_existing_ones(tmp_path):
    os.chmod(tmp_path, 0o755)
    made = filemodes.private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(made) == 0o700
    assert mode(tmp_path) == 0o755
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        filemodes.private_dir(tmp_path / "file")


def test_landing_segments_and_folders_are_private(tmp_path):
    root = tmp_path / "landing"
    writer = landing.LandingWriter(root)
    try:
        writer.append([record()])
        [segment] = list(landing.iter_open_segments(root))
        assert mode(segment) == 0o600
        assert {mode(folder) for folder in (root, segment.parent, segment.parent.parent)} == {0o700}
    finally:
        writer.close()
    [sealed] = list(landing.iter_sealed_segments(root))
    assert mode(sealed) == 0o600


def test_control_plane_and_warehouse_files_are_private(tmp_path):
    settings = Settings(home=tmp_path / "home")
    ControlPlane.from_settings(settings).create_project("p", "pro")
    assert mode(settings.home) == 0o700
    assert mode(settings.home / "control.db") == 0o600
    with warehouse.writer(settings) as con:
        con.execute("select 1")
    assert mode(settings.warehouse) == 0o600
    assert mode(f"{settings.warehouse}.lock") == 0o600


def test_a_failed_first_write_leaves_no_empty_segment(tmp_path, monkeypatch):
    root = tmp_path / "landing"
    writer = landing.LandingWriter(root)
    real_write = os.write

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    try:
        for _ in range(3):
            with pytest.raises(landing.LandingError, match="No space left"):
                writer.append([record()])
        assert [p for p in root.rglob("*") if p.is_file() and p.name != landing.SEAL_REQUEST_FILE] == []
        monkeypatch.setattr(os, "write", real_write)
        writer.append([record()])  # the disk has room again: the writer carries on
    finally:
        monkeypatch.setattr(os, "write", real_write)
        writer.close()
    segments = list(landing.iter_sealed_segments(root))
    assert len(segments) == 1 and segments[0].stat().st_size > 0
