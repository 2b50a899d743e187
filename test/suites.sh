#!/usr/bin/env bash
# The suites, run inside pg_virtualenv (PG* variables point at the cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
export PGDATABASE=connector_test
createdb connector_test
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pgtap'
pg_prove --failures --ext .sql test/sql/
