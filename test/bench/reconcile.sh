#!/usr/bin/env bash
# Reconciliation benchmark: a report-only reconcile() of ACCOUNTS accounts with
# GRANTS grants (a membership table) against a desired state with about 1%
# drift, compared with a COPY export of the membership table in the same run;
# then reconcile_table() on BIG_GRANTS grants to show it stays practical.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/reconcile.sh
#
# ACCOUNTS (default 50000), GRANTS (200000), BIG_GRANTS (1000000), REPEAT (3)
# may be set in the environment.  Each figure is the best of REPEAT runs,
# wall-clock time inside the server.
set -euo pipefail
ACCOUNTS=${ACCOUNTS:-50000}
GRANTS=${GRANTS:-200000}
BIG_GRANTS=${BIG_GRANTS:-1000000}
REPEAT=${REPEAT:-3}
export PGDATABASE=connector_bench_rc
sql() { PGOPTIONS="-c bench.repeat=$REPEAT" psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# Build app "bench" with $1 accounts and $2 grants (grants/accounts per account),
# and a desired state equal to it but for ~1% of the accounts.
build() {
	sql -v n="$1" -v g="$2" <<'SQL'
DROP SCHEMA IF EXISTS bench CASCADE;
SELECT connector.unregister_app(app) FROM connector.app WHERE app = 'bench';
CREATE SCHEMA bench;
CREATE TABLE bench.roles (id int PRIMARY KEY, name text NOT NULL, privileged boolean NOT NULL DEFAULT false);
INSERT INTO bench.roles SELECT r, 'role-' || r, r = 1 FROM generate_series(1, 200) r;
CREATE TABLE bench.users (id bigint PRIMARY KEY, login text NOT NULL, active boolean NOT NULL);
INSERT INTO bench.users SELECT u, 'user' || u, true FROM generate_series(1, :n) u;
CREATE TABLE bench.memberships (user_id bigint NOT NULL, role_id int NOT NULL, PRIMARY KEY (user_id, role_id));
INSERT INTO bench.memberships
SELECT u, 1 + (u * 7 + k * 31) % 200 FROM generate_series(1, :n) u, generate_series(1, :g / :n) k;
VACUUM ANALYZE bench.users, bench.memberships, bench.roles;
\o /dev/null
SELECT connector.register_app('bench', '{
  "accounts": {"table": "bench.users", "id": "id", "name": "login",
               "status": {"column": "active", "enabled": true, "disabled": false}},
  "entitlements": {"table": "bench.roles", "id": "id", "name": "name", "privileged": "privileged"},
  "grants": {"table": "bench.memberships", "account": "user_id", "entitlement": "role_id"}}');
\o
-- The desired state: the actual one, where every 100th account should have
-- one more role and lose its first one.
DROP TABLE IF EXISTS bench_desired;
CREATE UNLOGGED TABLE bench_desired (account text, entitlement text, enabled boolean);
INSERT INTO bench_desired
SELECT m.user_id::text, m.role_id::text, true FROM bench.memberships m
 WHERE m.user_id % 100 <> 0 OR m.role_id <> 1 + (m.user_id * 7 + 31) % 200
UNION ALL
SELECT u::text, '200', true FROM generate_series(100, :n, 100) u;
ANALYZE bench_desired;
DROP TABLE IF EXISTS bench_desired_json;
CREATE UNLOGGED TABLE bench_desired_json AS
SELECT jsonb_build_object('complete', true, 'accounts', jsonb_agg(a)) AS d
  FROM (SELECT jsonb_build_object('id', account, 'enabled', true,
							   'entitlements', jsonb_agg(entitlement)) AS a
		  FROM bench_desired GROUP BY account) s;
SELECT (SELECT count(*) FROM bench.users) AS accounts, (SELECT count(*) FROM bench.memberships) AS grants,
	   (SELECT count(*) FROM bench_desired) AS desired_grants,
	   pg_size_pretty(pg_column_size(d)::bigint) AS desired_jsonb FROM bench_desired_json;
SQL
}

createdb connector_bench_rc
sql -c 'CREATE EXTENSION connector'

echo "== $ACCOUNTS accounts, $GRANTS grants"
build "$ACCOUNTS" "$GRANTS"
sql <<'SQL'
CREATE TEMP TABLE timing (what text, ms numeric, n bigint);
COPY (SELECT * FROM bench.memberships) TO '/dev/null';		-- warm the cache
DO $$
DECLARE
	t0 timestamptz;
	n bigint;
BEGIN
	FOR i IN 1 .. current_setting('bench.repeat')::int LOOP
		t0 := clock_timestamp();
		COPY (SELECT * FROM bench.memberships) TO '/dev/null';
		INSERT INTO timing VALUES ('COPY membership table', extract(epoch FROM clock_timestamp() - t0) * 1000, NULL);
		t0 := clock_timestamp();
		SELECT count(*) INTO n FROM connector.reconcile('bench', (SELECT d FROM bench_desired_json));
		INSERT INTO timing VALUES ('reconcile (jsonb, report)', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
		t0 := clock_timestamp();
		SELECT count(*) INTO n FROM connector.reconcile_table('bench', 'bench_desired');
		INSERT INTO timing VALUES ('reconcile_table (report)', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
	END LOOP;
END
$$;
\pset footer off
SELECT what, round(min(ms)) AS "best ms", max(n) AS "result rows",
	   round(min(ms) / (SELECT min(ms) FROM timing WHERE what LIKE 'COPY%'), 2) AS "× COPY"
  FROM timing GROUP BY what ORDER BY min(ms);
SQL

echo "== $BIG_GRANTS grants ($((BIG_GRANTS / 4)) accounts with 4 each)"
build "$((BIG_GRANTS / 4))" "$BIG_GRANTS"
sql <<'SQL'
CREATE TEMP TABLE timing (what text, ms numeric, n bigint);
COPY (SELECT * FROM bench.memberships) TO '/dev/null';
DO $$
DECLARE
	t0 timestamptz;
	n bigint;
BEGIN
	t0 := clock_timestamp();
	COPY (SELECT * FROM bench.memberships) TO '/dev/null';
	INSERT INTO timing VALUES ('COPY membership table', extract(epoch FROM clock_timestamp() - t0) * 1000, NULL);
	t0 := clock_timestamp();
	SELECT count(*) INTO n FROM connector.reconcile_table('bench', 'bench_desired');
	INSERT INTO timing VALUES ('reconcile_table (report)', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
	t0 := clock_timestamp();
	SELECT count(*) INTO n FROM connector.reconcile('bench', (SELECT d FROM bench_desired_json));
	INSERT INTO timing VALUES ('reconcile (jsonb, report)', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
	t0 := clock_timestamp();
	SELECT count(*) INTO n FROM connector.reconcile_table('bench', 'bench_desired', true);
	INSERT INTO timing VALUES ('reconcile_table (enforce)', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
END
$$;
\pset footer off
SELECT what, round(ms) AS ms, n AS "result rows",
	   round(ms / (SELECT ms FROM timing WHERE what LIKE 'COPY%'), 2) AS "× COPY"
  FROM timing ORDER BY ms;
SQL
