#!/usr/bin/env bash
# Dump the vtx PostgreSQL database into a folder, in pg_dump's custom format.
#
#   VTX_DATABASE_URL=postgresql+asyncpg://user:pass@host:5432/vtx backup.sh /backup
#
# Writes <folder>/vtx-<UTC timestamp>.dump and checks that pg_restore can read it.
# The file appears under its final name only when complete, so the uploader never
# sees a half-written dump. Restore with:
#   pg_restore --clean --if-exists --no-owner --no-privileges -d "$URL" vtx-....dump
set -euo pipefail

# Turn the SQLAlchemy URL the services use into one libpq understands:
# drop the "+driver" part and spell asyncpg's ssl=... as sslmode=...
libpq_url() {
  local url="$1"
  url="$(printf '%s' "$url" | sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#')"
  url="$(printf '%s' "$url" | sed -E 's#([?&])ssl=#\1sslmode=#g')"
  printf '%s\n' "$url"
}

# The dump's file name for a moment in time (UTC), e.g. vtx-20250101T031700Z.dump
dump_name() {
  printf 'vtx-%s.dump\n' "${1:-$(date -u +%Y%m%dT%H%M%SZ)}"
}

main() {
  local out_dir="${1:-/backup}"
  if [[ -z "${VTX_DATABASE_URL:-}" ]]; then
    echo "backup: VTX_DATABASE_URL is not set" >&2
    return 2
  fi
  case "$VTX_DATABASE_URL" in
    postgres://* | postgresql://* | postgres+* | postgresql+*) ;;
    *)
      echo "backup: only PostgreSQL can be backed up this way (got ${VTX_DATABASE_URL%%:*})" >&2
      return 2
      ;;
  esac
  mkdir -p "$out_dir"
  local url name partial
  url="$(libpq_url "$VTX_DATABASE_URL")"
  name="$(dump_name)"
  partial="$out_dir/.$name.partial"
  echo "backup: dumping to $out_dir/$name"
  pg_dump --format=custom --compress=6 --no-owner --no-privileges \
    --dbname="$url" --file="$partial"
  # A dump pg_restore cannot list is no backup.
  pg_restore --list "$partial" >/dev/null
  mv "$partial" "$out_dir/$name"
  echo "backup: wrote $out_dir/$name ($(wc -c <"$out_dir/$name") bytes)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
