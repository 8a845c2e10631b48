"""Move encrypted database dumps to and from the backup store, and prune old ones.

    BACKUP_STORE_URL=s3://vtx-backups/prod BACKUP_PREFIX=backups/postgresql \
    BACKUP_RETENTION_DAYS=14 BACKUP_MIN_KEEP=3 python backup_store.py upload /backup

    BACKUP_STORE_URL=... BACKUP_PREFIX=... [BACKUP_NAME=vtx-...dump.enc] \
    python backup_store.py fetch /backup

Runs in the vtx image (obstore speaks file://, s3://, gs:// and az:// with the pod's
credentials or workload identity). The backup store is not the media store: the chart
refuses one inside the other. Dumps are named vtx-<YYYYmmddTHHMMSSZ>.dump.enc; their age
comes from that name, so a re-upload or a copied bucket keeps the retention right.
`fetch` downloads BACKUP_NAME, or the newest dump when it is empty.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NAME = re.compile(r"^vtx-(\d{8}T\d{6}Z)\.dump(\.enc)?$")


def dump_time(name: str) -> datetime | None:
    """The moment a dump was taken, from its file name; None for foreign names."""
    match = NAME.match(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def expired(names: list[str], now: datetime, retention_days: int, min_keep: int) -> list[str]:
    """Names to delete: older than the retention, but never the `min_keep` newest dumps.

    Names that are not vtx dumps are never touched.
    """
    dated = sorted(((t, n) for n in names if (t := dump_time(n)) is not None), reverse=True)
    cutoff = now - timedelta(days=retention_days)
    return sorted(n for i, (t, n) in enumerate(dated) if i >= min_keep and t < cutoff)


def _store(url: str) -> Any:
    from obstore.store import from_url

    if url.startswith("file://"):
        Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return from_url(url)


def _names(store: Any, prefix: str) -> list[str]:
    import obstore

    return [meta["path"] for batch in obstore.list(store, prefix=prefix) for meta in batch]


def upload(
    folder: Path,
    store_url: str,
    prefix: str,
    retention_days: int,
    min_keep: int,
    now: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """Upload every finished dump in `folder`, prune old ones; return (uploaded, deleted)."""
    import obstore

    store = _store(store_url)
    prefix = prefix.strip("/")
    uploaded = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and dump_time(path.name) is not None:
            key = f"{prefix}/{path.name}"
            obstore.put(store, key, path)
            uploaded.append(key)
            print(f"backup: uploaded {key} ({path.stat().st_size} bytes)")
    if not uploaded:
        raise SystemExit("backup: no dump found to upload")
    doomed = expired(_names(store, prefix), now or datetime.now(UTC), retention_days, min_keep)
    if doomed:
        obstore.delete(store, doomed)
        for key in doomed:
            print(f"backup: deleted {key} (past {retention_days} days)")
    return uploaded, doomed


def fetch(folder: Path, store_url: str, prefix: str, name: str = "") -> Path:
    """Download the dump called `name` (or the newest) into `folder`; return its path."""
    import obstore

    store = _store(store_url)
    prefix = prefix.strip("/")
    dumps = sorted((n for n in _names(store, prefix) if dump_time(n)), key=dump_time)
    if name:
        wanted = [n for n in dumps if n.rsplit("/", 1)[-1] == name]
        if not wanted:
            raise SystemExit(f"backup: no dump {name} under {prefix}/")
    elif not dumps:
        raise SystemExit(f"backup: no dump under {prefix}/ in the backup store")
    key = (wanted if name else dumps)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / key.rsplit("/", 1)[-1]
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as out:
        for chunk in obstore.get(store, key):
            out.write(chunk)
    partial.replace(target)
    print(f"backup: fetched {key} ({target.stat().st_size} bytes)")
    return target


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("upload", "fetch"):
        print("usage: backup_store.py upload|fetch FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[2] if len(argv) > 2 else "/backup")
    store_url = os.environ["BACKUP_STORE_URL"]
    prefix = os.environ.get("BACKUP_PREFIX", "backups/postgresql")
    if argv[1] == "fetch":
        fetch(folder, store_url, prefix, os.environ.get("BACKUP_NAME", ""))
        return 0
    upload(
        folder,
        store_url,
        prefix,
        retention_days=int(os.environ.get("BACKUP_RETENTION_DAYS", "14")),
        min_keep=int(os.environ.get("BACKUP_MIN_KEEP", "3")),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
