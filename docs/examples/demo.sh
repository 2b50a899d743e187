#!/usr/bin/env bash
# make demo: the example application end to end on a throwaway cluster.
# pg_virtualenv creates the cluster (as the postgres user), runs the steps with
# PG* variables pointing at it, and drops it afterwards, whatever happens.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec pg_virtualenv -o 'shared_preload_libraries=connector' "$here/demo-steps.sh"
