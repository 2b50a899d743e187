#!/usr/bin/env bash
# Capture benchmark: what the capture trigger costs a writing application,
# measured in one run against the same membership table in three setups:
#
#   unmapped   no trigger at all
#   connector  the table mapped by connector.register_app (C capture trigger)
#   plpgsql    a PL/pgSQL AFTER ROW trigger writing to_jsonb(OLD)/to_jsonb(NEW)
#              into an audit table (the common alternative)
#
# (a) pgbench, 2 clients, single-row INSERT + DELETE, synchronous_commit = off;
# (a') the same single-row transactions from one psql session, and the CPU
#     time its backend spent on them (Linux: /proc/self/schedstat);
# (b) a 100,000-row INSERT ... SELECT, its events written to the outbox, timed
#     in elapsed and in the backend's CPU time;
#     row g grants to account 1 + g % ACCOUNTS, so with ACCOUNTS >= ROWS every
#     row touches a distinct account (a role granted to everyone).
# The setups take turns, ROUNDS times for (a) and BULK_ROUNDS times for (b)
# (a round runs each setup once, back to back), and medians are compared:
# the machine's speed drifts, and interleaving spreads the drift over all
# three.  For (b), each round's times are divided by the unmapped time of
# the same round, seconds apart, and the median of those ratios is
# reported with the medians of the times.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/capture.sh
#
# DURATION (pgbench seconds per setup and round, default 15), CLIENTS
# (default 2), ROWS (bulk insert size, default 100000), ROUNDS (default 3),
# BULK_ROUNDS (default 9), SETUPS (default "unmapped connector plpgsql"; unmapped must come first),
# ACCOUNTS (rows of the accounts table, default 10000), IDTYPE (the account
# id's type: int, text or uuid; default int) and ROW_TXNS (insert and delete
# pairs of (a'), default 5000) may be set.
set -euo pipefail
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-2}
ROWS=${ROWS:-100000}
ROUNDS=${ROUNDS:-3}
BULK_ROUNDS=${BULK_ROUNDS:-9}
SETUPS=${SETUPS:-unmapped connector plpgsql}
ACCOUNTS=${ACCOUNTS:-10000}
IDTYPE=${IDTYPE:-int}
# the account id of number n, as SQL over an expression n
case "$IDTYPE" in
int) idsql() { echo "($1)"; } ;;
text) idsql() { echo "('user-' || ($1))"; } ;;
uuid) idsql() { echo "md5(($1)::text)::uuid"; } ;;
*) echo "IDTYPE must be int, text or uuid" >&2; exit 2 ;;
esac
export PGDATABASE=connector_bench
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

createdb connector_bench
# every session of the benchmark, pgbench's included, commits asynchronously
sql -c 'ALTER DATABASE connector_bench SET synchronous_commit = off'
echo "== building the application: $ACCOUNTS users ($IDTYPE ids), 100 roles, an empty membership table"
sql -v idtype="$IDTYPE" -v accounts="$ACCOUNTS" -v idexpr="$(idsql g)" <<'SQL'
CREATE EXTENSION connector;
CREATE SCHEMA app;
CREATE TABLE app.users (
	id			:idtype PRIMARY KEY,
	login		text NOT NULL,
	active		boolean NOT NULL DEFAULT true,
	kind		text NOT NULL DEFAULT 'human',
	email		text,
	pw_hash		text
);
INSERT INTO app.users
SELECT :idexpr, 'user' || g, true, CASE WHEN g % 10 = 0 THEN 'service' ELSE 'human' END,
	   'user' || g || '@example.com', md5(g::text)
  FROM generate_series(1, :accounts) g;
CREATE TABLE app.roles (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO app.roles SELECT g, 'role-' || g FROM generate_series(1, 100) g;
CREATE TABLE app.user_roles (user_id :idtype NOT NULL, role_id int NOT NULL);
CREATE INDEX ON app.user_roles (user_id, role_id);

-- The common alternative: a generic audit trigger.
CREATE TABLE app.audit (
	id			bigserial PRIMARY KEY,
	at			timestamptz NOT NULL DEFAULT clock_timestamp(),
	op			text NOT NULL,
	tbl			text NOT NULL,
	old			jsonb,
	new			jsonb
);
CREATE FUNCTION app.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO app.audit (op, tbl, old, new)
	VALUES (TG_OP, TG_TABLE_NAME,
			CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
			CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
	RETURN NULL;
END
$$;
VACUUM ANALYZE app.users, app.roles, app.user_roles;
SQL

# (a'): the same single-row transactions sent by psql from one session, and
# the CPU time its backend spent on them (/proc/self/schedstat), per
# transaction: time spent waiting for a core on a busy machine does not
# count in it, which makes it steadier than pgbench's TPS there.
awk -v n="${ROW_TXNS:-5000}" -v accounts="$ACCOUNTS" 'BEGIN { srand(1);
	for (i = 0; i < n; i++) printf "%d %d\n", 1 + int(rand() * accounts), 1 + int(rand() * 100) }' |
while read -r a r; do
	echo "INSERT INTO app.user_roles VALUES ($(idsql "$a"), $r);"
	echo "DELETE FROM app.user_roles WHERE user_id = $(idsql "$a") AND role_id = $r;"
done >"$work/rows-body.sql"
{
	echo "SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint AS c0 \\gset"
	cat "$work/rows-body.sql"
	echo "SELECT (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - :c0) / 1000.0 / (2 * ${ROW_TXNS:-5000});"
} >"$work/rows.sql"

cat >"$work/insert-delete.sql" <<SQL
\\set a random(1, $ACCOUNTS)
\\set r random(1, 100)
INSERT INTO app.user_roles VALUES ($(idsql :a), :r);
DELETE FROM app.user_roles WHERE user_id = $(idsql :a) AND role_id = :r;
SQL

# Put one setup in place (and take the previous one away).
setup() {
	case "$1" in
	unmapped) ;;
	connector)
		sql -o /dev/null -c "SELECT connector.register_app('bench', '{
		  \"accounts\": {\"table\": \"app.users\", \"id\": \"id\", \"name\": \"login\",
		               \"status\": {\"column\": \"active\", \"enabled\": true, \"disabled\": false},
		               \"kind\": \"kind\", \"attributes\": [\"email\"]},
		  \"entitlements\": {\"table\": \"app.roles\", \"id\": \"id\", \"name\": \"name\"},
		  \"grants\": {\"table\": \"app.user_roles\", \"account\": \"user_id\", \"entitlement\": \"role_id\"}}')" ;;
	plpgsql)
		sql -c 'CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON app.user_roles
				FOR EACH ROW EXECUTE FUNCTION app.audit_row()' ;;
	esac
}
teardown() {
	case "$1" in
	unmapped) ;;
	connector) sql -o /dev/null -c "SELECT connector.unregister_app('bench')" ;;
	plpgsql) sql -c 'DROP TRIGGER audit ON app.user_roles' ;;
	esac
}
# Empty what the previous run left, so every run starts from the same state.
clean() {
	sql -c 'TRUNCATE app.user_roles, app.audit, connector.outbox' \
		-c 'VACUUM ANALYZE app.user_roles, app.audit, connector.outbox' -c 'CHECKPOINT'
}

# (b): the bulk insert, timed inside the server up to the point where its
# events are in the outbox (connector._flush() writes what the capture
# trigger buffered; it does nothing in the other setups), then undone by
# rolling back to a savepoint so the next run starts from an empty table.
# Besides the elapsed time, the CPU time the backend spent on it (the first
# field of /proc/self/schedstat, in ns; Linux): on a machine shared with
# other work, time spent waiting for a core does not count in it.
bulk() {
	clean
	PGOPTIONS="-c bench.rows=$ROWS -c bench.setup=$1 -c bench.round=$2" \
		sql -v idexpr="$(idsql "1 + g % $ACCOUNTS")" <<'SQL'
PREPARE bulk_insert AS
INSERT INTO app.user_roles
SELECT :idexpr, 1 + (g * 7) % 100
  FROM generate_series(1, current_setting('bench.rows')::int) g;
DO $$
DECLARE
	t0 timestamptz;
	c0 bigint;
	ms numeric;
	cpu numeric;
BEGIN
	BEGIN
		c0 := split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
		t0 := clock_timestamp();
		EXECUTE 'EXECUTE bulk_insert';
		PERFORM connector._flush();
		ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
		cpu := (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - c0) / 1e6;
		RAISE EXCEPTION USING ERRCODE = 'BENCH', MESSAGE = ms::text || ' ' || cpu::text;
	EXCEPTION WHEN SQLSTATE 'BENCH' THEN
		ms := split_part(SQLERRM, ' ', 1)::numeric;
		cpu := split_part(SQLERRM, ' ', 2)::numeric;
	END;
	INSERT INTO bench_result
	VALUES (current_setting('bench.setup'), 'bulk', ms, current_setting('bench.round')::int),
		   (current_setting('bench.setup'), 'bulk_cpu', cpu, current_setting('bench.round')::int);
END
$$;
SQL
}

sql -c 'CREATE TABLE bench_result (setup text, what text, value numeric, round int)'
for round in $(seq "$ROUNDS"); do
	for s in $SETUPS; do
		echo "== pgbench round $round: $s"
		setup "$s"
		clean
		pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -f "$work/insert-delete.sql" \
			>"$work/pgbench-$s.out" 2>&1 || { cat "$work/pgbench-$s.out"; exit 1; }
		tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench-$s.out" | tail -1)
		if [ "$s" = connector ]; then
			events=$(sql -At -c 'SELECT count(*) FROM connector.outbox')
			echo "   $events outbox rows"
		fi
		sql -c "INSERT INTO bench_result VALUES ('$s', 'tps', $tps, $round)"
		clean
		us=$(sql -At -f "$work/rows.sql" | tail -1)
		sql -c "INSERT INTO bench_result VALUES ('$s', 'row_cpu', $us, $round)"
		teardown "$s"
	done
done
echo "== bulk: $BULK_ROUNDS rounds of $SETUPS"
for round in $(seq "$BULK_ROUNDS"); do
	for s in $SETUPS; do
		setup "$s"
		bulk "$s" "$round"
		teardown "$s"
	done
done

echo "== results ($ACCOUNTS accounts, $IDTYPE ids; synchronous_commit = off; pgbench: $CLIENTS clients, ${DURATION} s, medians of $ROUNDS rounds; bulk: $ROWS rows, $BULK_ROUNDS rounds)"
sql <<'SQL'
\pset footer off
-- each measurement against the unmapped one of the same round
CREATE TEMP VIEW paired AS
SELECT b.setup, b.what, b.round, b.value / u.value AS ratio
  FROM bench_result b JOIN bench_result u ON u.what = b.what AND u.setup = 'unmapped' AND u.round = b.round;
WITH r AS (
	SELECT setup,
		   percentile_disc(0.5) WITHIN GROUP (ORDER BY value) FILTER (WHERE what = 'tps') AS tps,
		   percentile_disc(0.5) WITHIN GROUP (ORDER BY value) FILTER (WHERE what = 'bulk') AS bulk_ms
	  FROM bench_result GROUP BY setup
), base AS (SELECT * FROM r WHERE setup = 'unmapped')
SELECT r.setup, round(r.tps) AS tps,
	   round(100 * (1 - r.tps / base.tps), 1) AS "TPS loss %",
	   (SELECT round(100 * (1 - (percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ratio))::numeric), 1)
		  FROM paired x WHERE x.setup = r.setup AND x.what = 'tps') AS "median TPS loss per round %",
	   round(r.bulk_ms) AS "bulk ms",
	   round(r.bulk_ms / base.bulk_ms, 2) AS "bulk ratio of medians",
	   (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ratio))::numeric, 2)
		  FROM paired x WHERE x.setup = r.setup AND x.what = 'bulk') AS "median bulk ratio per round",
	   (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ratio))::numeric, 2)
		  FROM paired x WHERE x.setup = r.setup AND x.what = 'bulk_cpu') AS "median bulk CPU ratio per round",
	   (SELECT round(100 * (1 - 1 / (percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ratio))::numeric), 1)
		  FROM paired x WHERE x.setup = r.setup AND x.what = 'row_cpu') AS "median row CPU loss per round %"
  FROM r, base
 ORDER BY array_position(ARRAY['unmapped', 'connector', 'plpgsql'], r.setup);
SELECT setup, 'tps' AS what, string_agg(round(value)::text, ' ' ORDER BY round) AS "per round"
  FROM bench_result WHERE what = 'tps' GROUP BY setup
UNION ALL
SELECT setup, 'bulk ms', string_agg(round(value)::text, ' ' ORDER BY round)
  FROM bench_result WHERE what = 'bulk' GROUP BY setup
UNION ALL
SELECT setup, 'row CPU us', string_agg(round(value, 1)::text, ' ' ORDER BY round)
  FROM bench_result WHERE what = 'row_cpu' GROUP BY setup
UNION ALL
SELECT setup, 'row CPU loss %', string_agg(round(100 * (1 - 1 / ratio), 1)::text, ' ' ORDER BY round)
  FROM paired WHERE setup <> 'unmapped' AND what = 'row_cpu' GROUP BY setup
UNION ALL
SELECT setup, 'bulk CPU ms', string_agg(round(value)::text, ' ' ORDER BY round)
  FROM bench_result WHERE what = 'bulk_cpu' GROUP BY setup
UNION ALL
SELECT setup, 'bulk CPU ratio', string_agg(round(ratio, 2)::text, ' ' ORDER BY round)
  FROM paired WHERE setup <> 'unmapped' AND what = 'bulk_cpu' GROUP BY setup
UNION ALL
SELECT setup, 'TPS loss %', string_agg(round(100 * (1 - ratio), 1)::text, ' ' ORDER BY round)
  FROM paired WHERE setup <> 'unmapped' AND what = 'tps' GROUP BY setup
UNION ALL
SELECT setup, 'bulk ratio', string_agg(round(ratio, 2)::text, ' ' ORDER BY round)
  FROM paired WHERE setup <> 'unmapped' AND what = 'bulk' GROUP BY setup
 ORDER BY 1, 2;
SQL
