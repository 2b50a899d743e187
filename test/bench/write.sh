#!/usr/bin/env bash
# Write API benchmark: 10,000 grant() calls and one 10,000-operation apply(),
# each against 10,000 plain INSERTs into the same membership table, same run.
#
# Runs against the cluster the PG* variables name, e.g. after `make install`:
#   pg_virtualenv -o shared_preload_libraries=connector test/bench/write.sh
# Creates and drops the database connector_bench.
set -euo pipefail

N=${N:-10000}
DB=connector_bench
export PGDATABASE=$DB
psql() { command psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT

psql <<SQL
CREATE EXTENSION connector;
CREATE SCHEMA app;
CREATE TABLE app.users (id int PRIMARY KEY, login text NOT NULL UNIQUE,
						active boolean NOT NULL DEFAULT true);
CREATE TABLE app.roles (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE app.user_roles (user_id int NOT NULL REFERENCES app.users,
							 role_id int NOT NULL REFERENCES app.roles,
							 valid_until timestamptz);
-- As in most applications: memberships are looked up by account (no unique
-- constraint, though: the API must not rely on one).
CREATE INDEX ON app.user_roles (user_id, role_id);
INSERT INTO app.users SELECT i, 'u' || i FROM generate_series(1, $N) i;
INSERT INTO app.roles SELECT i, 'r' || i FROM generate_series(1, 10) i;
SELECT connector.register_app('bench', '{
  "accounts": {"table": "app.users", "id": "id", "name": "login",
               "status": {"column": "active", "enabled": true, "disabled": false}},
  "entitlements": {"table": "app.roles", "id": "id", "name": "name"},
  "grants": {"table": "app.user_roles", "account": "user_id", "entitlement": "role_id",
             "expires": "valid_until"}}');
VACUUM ANALYZE;
SQL

# Milliseconds taken by a psql script read from stdin, after emptying the
# membership table.
timed() {
	psql -c 'TRUNCATE app.user_roles; CHECKPOINT' >/dev/null
	local t0 t1
	t0=$(date +%s%N)
	psql >/dev/null
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# Server side, one transaction: a loop of statements in a DO block.
ins_tx=$(timed <<SQL
DO \$\$ BEGIN
	FOR i IN 1..$N LOOP
		INSERT INTO app.user_roles (user_id, role_id) VALUES (i, 1 + i % 10);
	END LOOP;
END \$\$;
SQL
)
grant_tx=$(timed <<SQL
DO \$\$ BEGIN
	FOR i IN 1..$N LOOP
		PERFORM connector.grant('bench', i::text, (1 + i % 10)::text);
	END LOOP;
END \$\$;
SQL
)
apply_tx=$(timed <<SQL
SELECT connector.apply('bench', (
	SELECT jsonb_agg(jsonb_build_object('op', 'grant', 'account', i::text,
										'entitlement', (1 + i % 10)::text) ORDER BY i)
	  FROM generate_series(1, $N) i)) IS NOT NULL;
SQL
)

# Client side, one statement per transaction (autocommit), as a platform
# calls it: N statements sent by one psql session.
ins_ac=$(seq 1 "$N" | awk '{printf "INSERT INTO app.user_roles (user_id, role_id) VALUES (%d, %d);\n", $1, 1 + $1 % 10}' | timed)
grant_ac=$(seq 1 "$N" | awk '{printf "SELECT connector.grant('"'"'bench'"'"', '"'"'%d'"'"', '"'"'%d'"'"');\n", $1, 1 + $1 % 10}' | timed)

rows=$(psql -c 'SELECT count(*) FROM app.user_roles')
[ "$rows" -eq "$N" ] || { echo "expected $N membership rows, found $rows" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / (b > 0 ? b : 1) }'; }
echo "connector write benchmark, N = $N, $(psql -c 'SHOW server_version')"
printf '%-44s %8s ms\n' "plain INSERT, one transaction" "$ins_tx"
printf '%-44s %8s ms   ratio %sx\n' "grant() calls, one transaction" "$grant_tx" "$(ratio "$grant_tx" "$ins_tx")"
printf '%-44s %8s ms   ratio %sx\n' "apply() of $N grants, one call" "$apply_tx" "$(ratio "$apply_tx" "$ins_tx")"
printf '%-44s %8s ms\n' "plain INSERT, autocommit statements" "$ins_ac"
printf '%-44s %8s ms   ratio %sx\n' "grant() calls, autocommit statements" "$grant_ac" "$(ratio "$grant_ac" "$ins_ac")"
