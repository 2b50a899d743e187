#!/usr/bin/env bash
# The interop suite: the documented calls through real drivers, as identity
# platforms make them (docs/integrations.md, "Drivers"): pgjdbc (SailPoint,
# midPoint), psqlODBC through pyodbc (Entra's generic SQL connector), psycopg2,
# psycopg 3 and node-postgres.  Runs inside pg_virtualenv (PG* variables point
# at the cluster, as a superuser), from test/suites.sh.
#
# Each driver gets a fresh database with the docs fixture (test/docs/setup.sql)
# and logs in over TCP as sailpoint_svc, a member of connector_platform only.
# It first runs, verbatim and one by one, the statements of the blocks of
# docs/integrations.md marked <!-- interop: drivers -->, then the scenario
# of its program.  Prints every check and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

python=/usr/bin/python3		# Debian's, where python3-psycopg2 and friends are
jar=/usr/share/java/postgresql.jar
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
export INTEROP_USER=sailpoint_svc
export INTEROP_PASSWORD=interop-$RANDOM$RANDOM
passed=0
failed=0

fail() {
	echo "not ok - $*"
	failed=$((failed + 1))
}

if ! $python test/interop/doc_statements.py docs/integrations.md >"$work/statements" 2>"$work/err"; then
	fail "documented statements for drivers: $(cat "$work/err")"
	echo "$passed passed, $failed failed"
	exit 1
fi

# node-postgres: a test-only install from the committed lockfile.
node_ok=1
if ! (cd test/interop/node && npm ci --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1); then
	fail "npm ci of test/interop/node: $(tail -n 5 "$work/npm.log")"
	node_ok=0
fi

# One fresh database per driver: the docs fixture, the platform's password.
prepare() {
	local db=$1
	dropdb --if-exists "$db" >/dev/null 2>&1
	createdb "$db" &&
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/docs/setup.sql >"$work/setup.log" 2>&1 &&
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
			-c "ALTER ROLE $INTEROP_USER PASSWORD '$INTEROP_PASSWORD'" >>"$work/setup.log" 2>&1
}

# Run one driver's program; count its checks.
run() {
	local name=$1
	shift
	local db="interop_$name"
	if ! prepare "$db"; then
		fail "$name: setup"
		cat "$work/setup.log"
		return
	fi
	INTEROP_DB=$db timeout 120 "$@" "$work/statements" >"$work/$name.out" 2>&1
	local rc=$?
	sed "s/^/$name: /" "$work/$name.out"
	local p f
	p=$(grep -c '^ok - ' "$work/$name.out")
	f=$(grep -c '^not ok - ' "$work/$name.out")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		fail "$name: exited with status $rc"
	fi
	dropdb --if-exists "$db" >/dev/null 2>&1
}

run jdbc java -cp "$jar" test/interop/Interop.java
run psycopg2 $python test/interop/interop.py psycopg2
run psycopg $python test/interop/interop.py psycopg
run odbc $python test/interop/interop.py pyodbc
if [ $node_ok -eq 1 ]; then
	run node node test/interop/node/interop.js
fi

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
