#!/usr/bin/env bash
# Run every suite against a throwaway cluster started as the postgres user,
# with connector in shared_preload_libraries.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec pg_virtualenv -o 'shared_preload_libraries=connector' test/suites.sh
