#!/usr/bin/env bash
# The official postgres image's start-up contract, in small: on first start (PGDATA
# empty) create the cluster with POSTGRES_USER / POSTGRES_PASSWORD and the database
# POSTGRES_DB, reachable over TCP with scram-sha-256; then run the command. The
# password goes to initdb through a file descriptor, never on a command line.
set -euo pipefail

init_cluster() {
  local user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo "postgres: set POSTGRES_PASSWORD to initialise $PGDATA" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  initdb --pgdata="$PGDATA" --username="$user" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  if [[ "$db" != postgres ]]; then
    pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses='' -k /tmp" start
    psql --host=/tmp --username="$user" --dbname=postgres --set=ON_ERROR_STOP=1 \
      --command="CREATE DATABASE \"$db\""
    pg_ctl --pgdata="$PGDATA" --wait --silent stop
  fi
  echo "postgres: initialised $PGDATA (user $user, database $db)"
}

if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
  init_cluster
fi
exec "$@"
