#!/usr/bin/env bash
# make demo: the example application end to end on a throwaway cluster.
# pg_virtualenv creates the cluster (as the postgres user), runs the steps with
# PG* variables pointing at it, and drops it afterwards, whatever happens.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# The webhook receiver of the demo listens on loopback, which the SSRF guard
# refuses unless connector.allow_private_targets is on.
exec pg_virtualenv -o 'shared_preload_libraries=connector' \
	-o 'connector.allow_private_targets=on' -o 'connector.naptime=200ms' \
	"$here/demo-steps.sh"
