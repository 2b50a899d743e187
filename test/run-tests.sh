#!/usr/bin/env bash
# Run every suite: pgTAP, isolation and receiver tests against a throwaway
# cluster started as the postgres user, with connector in
# shared_preload_libraries; then the PostgreSQL::Test::Cluster suites, which
# start their own clusters.  Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
# The gateway's parser and PATCH unit tests (no cluster needed).
make -s -C gateway check || status=1
pg_virtualenv -o 'shared_preload_libraries=connector' test/suites.sh || status=1
test/run-tap.sh || status=1
exit $status
