#!/usr/bin/env bash
# Profile one pgbench client of the capture benchmark with perf (needs linux-perf):
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/capture_profile.sh
#   perf report -i /tmp/connector-capture.perf --no-children --sort dso
# C=2 runs two pgbench clients (the backend of the first is profiled).
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
psql -qX <<'SQL'
CREATE EXTENSION connector;
CREATE SCHEMA app;
CREATE TABLE app.users (id int PRIMARY KEY, login text NOT NULL, active boolean NOT NULL DEFAULT true, kind text DEFAULT 'human');
INSERT INTO app.users SELECT g, 'user-' || g, true, 'human' FROM generate_series(1, 10000) g;
CREATE TABLE app.roles (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO app.roles SELECT g, 'role-' || g FROM generate_series(1, 100) g;
CREATE TABLE app.user_roles (user_id int NOT NULL, role_id int NOT NULL);
CREATE INDEX ON app.user_roles (user_id, role_id);
SELECT connector.register_app('a', '{"accounts": {"table": "app.users", "id": "id", "name": "login", "kind": "kind"}, "entitlements": {"table": "app.roles", "id": "id", "name": "name"}, "grants": {"table": "app.user_roles", "account": "user_id", "entitlement": "role_id"}}');
SQL
cat > "$tmp/pgb.sql" <<'SQL'
\set a random(1, 10000)
\set r random(1, 100)
INSERT INTO app.user_roles VALUES (:a, :r);
DELETE FROM app.user_roles WHERE user_id = :a AND role_id = :r;
SQL
PGOPTIONS='-c synchronous_commit=off' pgbench -n -c ${C:-1} -j ${C:-1} -T 12 -f "$tmp/pgb.sql" > "$tmp/pgb.out" 2>&1 &
sleep 3
pid=$(psql -XAtc "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
perf record --call-graph dwarf,16384 -o /tmp/connector-capture.perf -p $pid -- sleep 6 >/dev/null 2>&1
wait
grep tps "$tmp/pgb.out"
