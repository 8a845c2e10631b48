#!/usr/bin/env bash
# Encrypted logical backups of the vtx PostgreSQL database, and their restore.
#
#   backup.sh dump FOLDER        write FOLDER/vtx-<UTC time>.dump.enc
#   backup.sh restore PATH       restore PATH (a .dump.enc, or the newest one in a folder)
#
# The database comes from VTX_DATABASE_URL (the services' SQLAlchemy URL). It is handed to
# libpq as PG* variables, so neither the password nor the URL ever appears in a process's
# arguments. A dump is pg_dump's custom format, checked with `pg_restore --list`, then
# encrypted with AES-256-CBC under a key derived (PBKDF2-SHA256) from the passphrase in the
# file BACKUP_KEY_FILE; only a complete, checked file gets its final name. Decrypt by hand:
#   openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -md sha256 -pass file:KEY -in X.dump.enc -out X.dump
set -euo pipefail

ITERATIONS=600000
CIPHER=(-aes-256-cbc -pbkdf2 -iter "$ITERATIONS" -md sha256)

# Percent-decoding of one URL part (a backslash stays a backslash).
urldecode() {
  local text="${1//\\/\\\\}"
  printf '%b' "${text//%/\\x}"
}

# Export PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (and PGSSLMODE from ssl= or
# sslmode=) for a postgresql[+driver]://user:password@host:port/database?params URL.
pg_env() {
  local url="$1" rest userinfo="" hostport query="" path="" param
  if [[ ! "$url" =~ ^postgres(ql)?(\+[A-Za-z0-9_]+)?://(.+)$ ]]; then
    echo "backup: only PostgreSQL can be backed up this way (got ${url%%:*})" >&2
    return 2
  fi
  rest="${BASH_REMATCH[3]}"
  if [[ "$rest" == *@* ]]; then
    userinfo="${rest%@*}"
    rest="${rest##*@}"
  fi
  if [[ "$rest" == *\?* ]]; then
    query="${rest#*\?}"
    rest="${rest%%\?*}"
  fi
  if [[ "$rest" == */* ]]; then
    path="${rest#*/}"
    rest="${rest%%/*}"
  fi
  hostport="$rest"
  if [[ "$hostport" =~ ^\[([^]]+)\](:([0-9]+))?$ ]]; then
    export PGHOST="${BASH_REMATCH[1]}" PGPORT="${BASH_REMATCH[3]:-5432}"
  elif [[ "$hostport" =~ ^([^:]+)(:([0-9]+))?$ ]]; then
    export PGHOST="${BASH_REMATCH[1]}" PGPORT="${BASH_REMATCH[3]:-5432}"
  else
    echo "backup: no host in the database URL" >&2
    return 2
  fi
  if [[ -n "$userinfo" ]]; then
    PGUSER="$(urldecode "${userinfo%%:*}")"
    export PGUSER
    if [[ "$userinfo" == *:* ]]; then
      PGPASSWORD="$(urldecode "${userinfo#*:}")"
      export PGPASSWORD
    fi
  fi
  PGDATABASE="$(urldecode "${path:-postgres}")"
  export PGDATABASE
  local IFS='&'
  for param in $query; do
    case "$param" in
      ssl=* | sslmode=*) export PGSSLMODE="${param#*=}" ;;
    esac
  done
}

load_settings() {
  if [[ -z "${VTX_DATABASE_URL:-}" ]]; then
    echo "backup: VTX_DATABASE_URL is not set" >&2
    return 2
  fi
  pg_env "$VTX_DATABASE_URL"
  if [[ ! -s "${BACKUP_KEY_FILE:-}" ]]; then
    echo "backup: BACKUP_KEY_FILE must name a file holding the backup passphrase" >&2
    return 2
  fi
}

# The dump's file name for a moment in time (UTC), e.g. vtx-20250101T031700Z.dump
dump_name() {
  printf 'vtx-%s.dump\n' "${1:-$(date -u +%Y%m%dT%H%M%SZ)}"
}

dump() {
  local out_dir="${1:-/backup}" name partial
  load_settings
  mkdir -p "$out_dir"
  name="$(dump_name)"
  partial="$out_dir/.$name.partial"
  echo "backup: dumping database $PGDATABASE on $PGHOST:$PGPORT"
  pg_dump --format=custom --compress=6 --no-owner --no-privileges --file="$partial"
  # A dump pg_restore cannot list is no backup.
  pg_restore --list "$partial" >/dev/null
  openssl enc -e "${CIPHER[@]}" -salt -pass "file:$BACKUP_KEY_FILE" -in "$partial" -out "$partial.enc"
  rm -f "$partial"
  mv "$partial.enc" "$out_dir/$name.enc"
  echo "backup: wrote $out_dir/$name.enc ($(wc -c <"$out_dir/$name.enc") bytes, encrypted)"
}

# Create the database when it is missing (dropped, or a new server); needs CREATEDB.
ensure_database() {
  if psql --no-psqlrc --tuples-only --command='SELECT 1' >/dev/null 2>&1; then
    return
  fi
  echo "backup: creating database $PGDATABASE"
  psql --dbname=postgres --no-psqlrc --set=ON_ERROR_STOP=1 --set=db="$PGDATABASE" \
    <<<'CREATE DATABASE :"db"'
}

restore() {
  local source="${1:-/backup}" file plain
  load_settings
  file="$source"
  if [[ -d "$source" ]]; then
    file="$(find "$source" -maxdepth 1 -name 'vtx-*.dump.enc' | sort | tail -1)"
  fi
  if [[ ! -f "$file" ]]; then
    echo "backup: no vtx-*.dump.enc found at $source" >&2
    return 2
  fi
  plain="${file%.enc}.plain"
  echo "backup: restoring $(basename "$file") into $PGDATABASE on $PGHOST:$PGPORT"
  openssl enc -d "${CIPHER[@]}" -pass "file:$BACKUP_KEY_FILE" -in "$file" -out "$plain"
  pg_restore --list "$plain" >/dev/null
  ensure_database
  pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
    --exit-on-error --dbname="$PGDATABASE" "$plain"
  rm -f "$plain"
  echo "backup: restored $(basename "$file")"
}

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    dump) dump "$@" ;;
    restore) restore "$@" ;;
    *)
      echo "usage: backup.sh dump FOLDER | backup.sh restore FILE_OR_FOLDER" >&2
      return 2
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
