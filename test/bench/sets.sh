#!/usr/bin/env bash
# SET signing micro benchmark (spec section 12): signed Security Event Tokens
# per second from connector._sets(), RS256 and ES256, against the webhook
# HMAC-SHA256 signer connector._sign() over a body of the same size, in one
# run, each with 1 and 2 pgbench clients (the machine's two cores).  Every
# statement renders SETS_PER_STATEMENT distinct events (each its own jti), so
# the per-statement overhead of pgbench does not dominate.  No HTTP: this is
# the rendering and signing cost that push delivery will pay per SET.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/sets.sh
#
# DURATION (seconds per measurement, default 5) and SETS_PER_STATEMENT
# (default 20) may be set.
set -euo pipefail
DURATION=${DURATION:-5}
SETS_PER_STATEMENT=${SETS_PER_STATEMENT:-20}
DB=connector_bench_sets
export PGDATABASE=$DB
here="$(cd "$(dirname "$0")" && pwd)"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
sql -c 'CREATE EXTENSION connector'
# crm_spec() lives in pg_temp: the fixture and register_app share one session
sql -f "$here/../fixtures/crm.sql" -c "SELECT connector.register_app('crm', pg_temp.crm_spec())" >/dev/null
sql -c "UPDATE \"Crm App\".users SET active = false WHERE id = 1" \
	-c "CREATE TABLE bench_event AS SELECT event FROM connector.changes('crm') WHERE event->>'type' = 'account.updated' OR event->>'type' = 'account.disabled' LIMIT 1"
# account.disabled gives two SETs; make it account.enabled (one SET) for a clean count
sql -c "UPDATE bench_event SET event = jsonb_set(event, '{type}', '\"account.enabled\"')" -c "ANALYZE bench_event"
len=

cat >"$work/hmac.sql" <<SQL
SELECT count(connector._sign('evt_' || g, 1700000000, b.body, '\\x31f290f6bf06298aab4f3c3f0c082cf648a362da2da4b0')) FROM generate_series(1, $SETS_PER_STATEMENT) g, bench_body b;
SQL
cat >"$work/sets.sql" <<SQL
SELECT count(*) FROM bench_event e, generate_series(1, $SETS_PER_STATEMENT) g,
	LATERAL connector._sets('crm', jsonb_set(e.event, '{id}', to_jsonb('evt_' || g)), 'https://ssf.example.com/ssf/crm', 'https://receiver.example.net/stream/1') s;
SQL

rate() {		# script, clients -> signatures per second
	local tps
	tps=$(pgbench -n -f "$1" -c "$2" -j "$2" -T "$DURATION" 2>/dev/null | awk '/^tps = / {print $3}')
	awk -v t="$tps" -v n="$SETS_PER_STATEMENT" 'BEGIN {printf "%.0f", t * n}'
}

echo "== SET rendering and signing, $DURATION s per measurement, $SETS_PER_STATEMENT per statement"
printf '%-34s %12s %12s\n' "signer" "1 client/s" "2 clients/s"
for alg in RS256 ES256; do
	kid=$(sql -c "SELECT connector.add_signing_key('crm', '$alg')")
	[ -z "$len" ] && len=$(sql -c "SELECT octet_length(s) FROM bench_event, connector._sets('crm', event, 'https://ssf.example.com/ssf/crm', 'https://receiver.example.net/stream/1') s")
	printf '%-34s %12s %12s\n' "_sets $alg (kid ${kid:0:8}…)" "$(rate "$work/sets.sql" 1)" "$(rate "$work/sets.sql" 2)"
done
# the baseline: the webhook HMAC over a body as long as one SET
sql -c "CREATE TABLE bench_body AS SELECT repeat('x', $len) AS body" -c "ANALYZE bench_body"
printf '%-34s %12s %12s\n' "_sign HMAC-SHA256, ${len}-byte body" "$(rate "$work/hmac.sql" 1)" "$(rate "$work/hmac.sql" 2)"
