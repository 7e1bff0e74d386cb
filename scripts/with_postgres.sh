#!/usr/bin/env bash
# Runs CMD with DATABASE_URL pointing at a throwaway PostgreSQL server, which is stopped and
# removed afterwards, also when CMD fails or is interrupted.  Usage: scripts/with_postgres.sh CMD [ARGS...]
set -euo pipefail
exec "$(dirname "$0")/pg_ephemeral.sh" run "$@"
