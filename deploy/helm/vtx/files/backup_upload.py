"""Upload pg_dump files to the vtx object store and delete the ones past retention.

    VTX_STORE_URL=s3://bucket/prefix BACKUP_PREFIX=backups/postgresql \
    BACKUP_RETENTION_DAYS=14 BACKUP_MIN_KEEP=3 python backup_upload.py /backup

Runs in the vtx image (obstore speaks file://, s3://, gs:// and az:// with the pod's
credentials or workload identity). Dumps are named vtx-<YYYYmmddTHHMMSSZ>.dump; their age
comes from that name, so a re-upload or a copied bucket keeps the retention right.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NAME = re.compile(r"^vtx-(\d{8}T\d{6}Z)\.dump$")


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


def run(
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
    names = [meta["path"] for batch in obstore.list(store, prefix=prefix) for meta in batch]
    doomed = expired(names, now or datetime.now(UTC), retention_days, min_keep)
    if doomed:
        obstore.delete(store, doomed)
        for key in doomed:
            print(f"backup: deleted {key} (past {retention_days} days)")
    return uploaded, doomed


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "/backup")
    run(
        folder,
        store_url=os.environ["VTX_STORE_URL"],
        prefix=os.environ.get("BACKUP_PREFIX", "backups/postgresql"),
        retention_days=int(os.environ.get("BACKUP_RETENTION_DAYS", "14")),
        min_keep=int(os.environ.get("BACKUP_MIN_KEEP", "3")),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
