#!/usr/bin/env bash
# System packages the test suite needs beyond Python (run by `make test`).
# Installs only what is missing, and only where apt-get can run (root on Debian).
set -euo pipefail

need=(
  chromium # tests/e2e/test_web.py drives Debian's Chromium through Playwright (never a downloaded one)
  prometheus # promtool checks /metrics and the alert rules; a real server scrapes the suite
)

# The PostgreSQL server binaries for the tests that run the suite on PostgreSQL.
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)

missing=()
for pkg in "${need[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
