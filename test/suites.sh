#!/usr/bin/env bash
# The suites, run inside pg_virtualenv (PG* variables point at the cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
export PGDATABASE=connector_test
status=0

# pgTAP: each file runs in its own transaction and creates the extension itself.
createdb connector_test
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pgtap'
pg_prove --failures --ext .sql test/sql/ || status=1

# The security suite: each attack of issue 13 as a test, run as the roles an
# attacker would have (fixtures in test/security/fixtures/, not run alone).
pg_prove --failures --ext .sql test/security/ || status=1

# Isolation tests: concurrency, with the isolation tester of PostgreSQL.
specs=$(find test/isolation/specs -name '*.spec' -printf '%f\n' 2>/dev/null | sed 's/\.spec$//' | sort || true)
if [ -n "$specs" ]; then
	createdb connector_iso
	psql -qX -v ON_ERROR_STOP=1 -d connector_iso -c 'CREATE EXTENSION connector'
	mkdir -p test/results/isolation
	chmod -R a+rwX test/results
	"$(dirname "$(pg_config --pgxs)")/../test/isolation/pg_isolation_regress" \
		--use-existing --dbname=connector_iso \
		--inputdir=test/isolation --outputdir=test/results/isolation \
		$specs || { cat test/results/isolation/regression.diffs 2>/dev/null; status=1; }
fi

# The webhook receiver's self-test: Standard Webhooks verification, faults, TLS.
timeout 300 python3 test/receiver/test_receiver.py || status=1

# Security Event Tokens: every event type signed and verified independently.
test/ssf/run.sh || status=1

# The docs test: every SQL example of README.md and docs/*.md runs as written.
test/docs/run.sh || status=1

# The interop suite: the documented calls through pgjdbc, psqlODBC, psycopg2,
# psycopg 3 and node-postgres, as the identity platforms make them.
test/interop/run.sh || status=1

# The SCIM suite: connector-gateway over HTTP and TLS as the platforms call it, then fuzzed.
test/scim/run.sh || status=1
exit $status
