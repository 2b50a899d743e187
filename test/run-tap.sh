#!/usr/bin/env bash
# Run the PostgreSQL::Test::Cluster suites (test/t/*.pl) as the postgres user:
# PostgreSQL refuses to run as root, so the tests run from a copy that user owns.
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=$(pg_config --bindir)
perl_lib="$(dirname "$(pg_config --pgxs)")/../test/perl"
work=$(mktemp -d /tmp/connector-tap.XXXXXX)
# TAP_KEEP_LOGS=dir keeps the clusters' logs there after the run
trap 'if [ -n "${TAP_KEEP_LOGS:-}" ]; then mkdir -p "$TAP_KEEP_LOGS"; cp -r "$work"/tmp_check/log/. "$TAP_KEEP_LOGS"/ 2>/dev/null || true; fi; rm -rf "$work"' EXIT
cp -r test "$work/"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres: "$work"
	as_user=(runuser -u postgres --)
fi
cd "$work"
# prove given a directory looks for *.t only: name the suites
[ $# -gt 0 ] || set -- test/t/*.pl
"${as_user[@]}" env PATH="$bindir:$PATH" TESTDIR="$work" PG_REGRESS="$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress" \
	prove -I "$perl_lib" -I test/t ${PROVE_FLAGS:-} "$@"
