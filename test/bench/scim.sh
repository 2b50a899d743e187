#!/usr/bin/env bash
# SCIM gateway benchmark (spec §11, issue 15 item 9), in one run:
#
#   (a) GET /Users/<id>, (b) GET /Users?filter=userName eq "…" and
#   (c) a group member add (PATCH /Groups/<id>), each through connector-gateway
#   driven by wrk, against (a'), (b'), (c') the same SQL calls the gateway
#   makes (scim_session, then the read or the grant, in one transaction),
#   made directly by pgbench with the same number of connections.  The
#   target: the gateway at no less than half pgbench's throughput.
#   (d) a userName look-up's plan at ACCOUNTS accounts (an index scan);
#   (e) a whole-directory walk with RFC 9865 cursors, count=1000: the time
#   of the first and the last tenth of the pages (equal when the walk is
#   linear: no OFFSET rescans).
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/scim.sh
#
# ACCOUNTS (default 1000000), DURATION (seconds per measurement, default 10),
# CLIENTS (connections, default 4), ROUNDS (default 2) may be set.
set -euo pipefail
ACCOUNTS=${ACCOUNTS:-1000000}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
ROUNDS=${ROUNDS:-2}
DB=connector_bench
export PGDATABASE=$DB
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
gw_pid=
cleanup() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 2; }
gateway=$(pg_config --bindir)/connector-gateway
[ -x "$gateway" ] || { echo "$gateway is missing: run make install" >&2; exit 2; }

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
echo "== building the application: $ACCOUNTS users, 100 groups, 3 grants per user"
sql -v accounts="$ACCOUNTS" <<'SQL'
CREATE EXTENSION connector;
CREATE SCHEMA app;
CREATE TABLE app.users (
	id			int PRIMARY KEY,
	login		text NOT NULL UNIQUE,
	first_name	text,
	last_name	text,
	email		text,
	active		boolean NOT NULL DEFAULT true,
	kind		text NOT NULL DEFAULT 'human',
	updated_at	timestamptz NOT NULL DEFAULT now()
);
INSERT INTO app.users (id, login, first_name, last_name, email, kind)
SELECT g, 'user' || g, 'First' || g, 'Last' || g, 'user' || g || '@example.com',
	   CASE WHEN g % 10 = 0 THEN 'service' ELSE 'human' END
  FROM generate_series(1, :accounts) g;
-- what docs/scim.md asks for: case-insensitive userName look-ups by index
CREATE INDEX ON app.users (lower(login));
CREATE TABLE app.roles (id int PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO app.roles SELECT g, 'group-' || g FROM generate_series(1, 100) g;
CREATE TABLE app.user_roles (user_id int NOT NULL REFERENCES app.users,
							 role_id int NOT NULL REFERENCES app.roles);
CREATE INDEX ON app.user_roles (user_id, role_id);
CREATE INDEX ON app.user_roles (role_id, user_id);
INSERT INTO app.user_roles SELECT g, 1 + (g * k) % 100 FROM generate_series(1, :accounts) g,
	   generate_series(1, 3) k;
SELECT connector.register_app('bench', '{
  "accounts": {"table": "app.users", "id": "id", "name": "login",
               "status": {"column": "active", "enabled": true, "disabled": false},
               "kind": "kind",
               "attributes": ["first_name", "last_name", "email", "updated_at"]},
  "entitlements": {"table": "app.roles", "id": "id", "name": "name"},
  "grants": {"table": "app.user_roles", "account": "user_id", "entitlement": "role_id"},
  "scim": {"attributes": {"name.givenName": "first_name", "name.familyName": "last_name",
                          "emails[type eq \"work\"].value": "email"},
           "lastModified": "updated_at"}}');
CREATE ROLE scim_bench LOGIN PASSWORD 'bench';
GRANT connector_platform TO scim_bench;
VACUUM ANALYZE;
SQL
token=$(sql -c "SELECT connector.add_token('bench', 'bench')")
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$DB user=scim_bench password=bench"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$gateway" --listen "127.0.0.1:$port" --database "$conninfo" --pool "$CLIENTS" --insecure-http \
	2>"$work/gateway.log" &
gw_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/scim/v2/bench"

# wrk scripts: a random account per request, the token in a header.
cat >"$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
request = function()
	return wrk.format("GET", "/scim/v2/bench/Users/" .. math.random(1, $ACCOUNTS))
end
LUA
cat >"$work/filter.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
request = function()
	return wrk.format("GET", "/scim/v2/bench/Users?filter=userName%20eq%20%22user" ..
		math.random(1, $ACCOUNTS) .. "%22")
end
LUA
cat >"$work/member.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/scim+json"
request = function()
	return wrk.format("PATCH", "/scim/v2/bench/Groups/" .. math.random(1, 100), nil,
		'{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
		'"Operations":[{"op":"add","path":"members","value":[{"value":"' ..
		math.random(1, $ACCOUNTS) .. '"}]}]}')
end
done = function(summary, latency, requests)
	io.write(string.format("non2xx=%d\n", summary.errors.status))
end
LUA
# The same SQL, made directly: the statements the gateway sends for each
# (chr(58) is a colon, which pgbench would read as a variable)
# request (gateway/scim.c), pipelined as it pipelines them (one round trip).
cat >"$work/get.sql" <<SQL
\\set id random(1, $ACCOUNTS)
\\startpipeline
SELECT connector.scim_session('bench', '$token');
SELECT connector.scim_mapping('bench')::text;
SELECT total, id, name, enabled, kind, attributes::text, entitlements::text FROM connector.scim_accounts('bench', ('{"attr": "id", "op": "eq", "value": "' || :id::text || '"}')::jsonb, NULL, 0, 1, false);
\\endpipeline
SQL
cat >"$work/filter.sql" <<SQL
\\set id random(1, $ACCOUNTS)
\\startpipeline
SELECT connector.scim_session('bench', '$token');
SELECT connector.scim_mapping('bench')::text;
SELECT total, id, name, enabled, kind, attributes::text, entitlements::text FROM connector.scim_accounts('bench', ('{"attr": "name", "op": "eq", "ci": true, "value": "user' || :id::text || '"}')::jsonb, NULL, 0, 100, true);
\\endpipeline
SQL
cat >"$work/member.sql" <<SQL
\\set id random(1, $ACCOUNTS)
\\set g random(1, 100)
\\startpipeline
BEGIN;
SELECT connector.scim_session('bench', '$token');
SELECT connector.scim_mapping('bench')::text;
SELECT pg_advisory_xact_lock(hashtext('scim' || chr(58) || 'bench'), hashtext('Group' || :g::text));
SELECT total, id, name, attributes::text, members::text FROM connector.scim_entitlements('bench', ('{"attr": "id", "op": "eq", "value": "' || :g::text || '"}')::jsonb, NULL, 0, 1, false, false);
SELECT connector.apply('bench', ('[{"op": "grant", "account": "' || :id::text || '", "entitlement": "' || :g::text || '"}]')::jsonb)::text;
COMMIT;
\\endpipeline
SQL

# requests per second of a wrk run / transactions per second of pgbench
wrk_rps() {
	wrk -t1 -c"$CLIENTS" -d"${DURATION}s" -s "$work/$1.lua" "$base" >"$work/wrk.out"
	if grep -q 'Non-2xx' "$work/wrk.out"; then
		echo "gateway answered non-2xx in $1:" >&2; cat "$work/wrk.out" >&2; exit 1
	fi
	awk '/Requests\/sec/ {printf "%d", $2}' "$work/wrk.out"
}
pgb_tps() {
	PGUSER=scim_bench PGPASSWORD=bench pgbench -n -M extended -c "$CLIENTS" -j 1 -T "$DURATION" \
		-f "$work/$1.sql" "$DB" >"$work/pgbench.out" 2>&1 ||
		{ echo "pgbench failed in $1:" >&2; grep -m 3 -i error "$work/pgbench.out" >&2; exit 1; }
	awk '/^tps/ {printf "%d", $3}' "$work/pgbench.out"
}

echo "== throughput, $CLIENTS connections, ${DURATION}s each, $ROUNDS rounds (gateway / direct SQL)"
for w in get filter member; do
	for r in $(seq "$ROUNDS"); do
		g=$(wrk_rps "$w")
		d=$(pgb_tps "$w")
		awk -v w="$w" -v r="$r" -v g="$g" -v d="$d" 'BEGIN {
			printf "%-7s round %d: gateway %6d req/s, pgbench %6d tps, ratio %.2f\n", w, r, g, d, g / d }'
	done
done

echo "== userName eq at $ACCOUNTS accounts: the plan of the compiled look-up"
sql 2>&1 >/dev/null <<'SQL' | grep -E ' on users | lower\(login\)' | sed 's/^ */  /'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SELECT count(*) FROM connector.scim_accounts('bench',
	'{"attr": "name", "op": "eq", "ci": true, "value": "USER77"}', NULL, 0, 100, true);
SQL

echo "== whole-directory walk, cursor paging, count=1000"
python3 - "$base" "$token" "$ACCOUNTS" <<'PY'
import http.client, json, sys, time, urllib.parse
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlsplit(base)
c = http.client.HTTPConnection(u.hostname, u.port)
times, cursor, seen = [], "", 0
while True:
    t0 = time.monotonic()
    c.request("GET", u.path + "/Users?count=1000&cursor=" + urllib.parse.quote(cursor),
              headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); body = json.loads(r.read())
    times.append(time.monotonic() - t0)
    assert r.status == 200, (r.status, body)
    seen += len(body["Resources"])
    cursor = body.get("nextCursor")
    if not cursor:
        break
assert seen == n, (seen, n)
k = max(1, len(times) // 10)
first, last = sum(times[:k]), sum(times[-k:])
print(f"walk: {seen} users in {len(times)} pages, {sum(times):.1f} s; "
      f"first tenth {first:.2f} s, last tenth {last:.2f} s, ratio {last / first:.2f}")
PY
