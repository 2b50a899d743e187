#!/usr/bin/env bash
# make bench: every benchmark, each on its own throwaway cluster.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pg_virtualenv -o 'shared_preload_libraries=connector' "$here/enumerate.sh"
pg_virtualenv -o 'shared_preload_libraries=connector' "$here/capture.sh"
pg_virtualenv -o 'shared_preload_libraries=connector' "$here/delivery.sh"
pg_virtualenv -o 'shared_preload_libraries=connector' "$here/reconcile.sh"
