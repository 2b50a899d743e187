#!/usr/bin/env bash
# The demo story, one numbered step after another.  Runs inside pg_virtualenv
# (see demo.sh).  Later features append their steps at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PGDATABASE=ledger_demo

# Run SQL from stdin; stop the demo at the first error.
sql() { psql -X -q -v ON_ERROR_STOP=1 --pset=footer=off "$@"; }
step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

# The Ledger's own rows for some user ids ("1, 3"), read as the application reads them.
app_rows() {
	sql -v ids="$1" <<'SQL'
SET ROLE ledger_app;
SELECT u.id, u.login, u.status,
	   coalesce(string_agg(r.code || coalesce(' until ' || to_char(m.valid_until, 'YYYY-MM-DD HH24:MI'), ''),
						   ', ' ORDER BY r.id), '') AS "roles (memberships)",
	   (SELECT coalesce(string_agg(k.key_prefix || CASE WHEN k.revoked_at IS NULL THEN '' ELSE ' (revoked)' END,
								   ', ' ORDER BY k.id), '')
		  FROM "Finance Ledger".api_keys k WHERE k.user_id = u.id) AS "API keys"
  FROM "Finance Ledger".users u
  LEFT JOIN "Finance Ledger".memberships m ON m.user_id = u.id
  LEFT JOIN "Finance Ledger".roles r ON r.id = m.role_id
 WHERE u.id IN (:ids)
 GROUP BY u.id ORDER BY u.id;
SQL
}

# The last position of the change feed, as the platform reads it.
feed_end() {
	sql -tA <<'SQL'
SET ROLE okta_agent;
SELECT coalesce(max(position), 0) FROM connector.changes('ledger', 0, 100000);
SQL
}

# Fail the demo if the feed has any event after position $1; $2 says what should have left none.
expect_no_events() {
	sql -v since="$1" -v what="$2" <<'SQL'
SET ROLE okta_agent;
SET demo.since = :'since';
SET demo.what = :'what';
DO $$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM connector.changes('ledger', current_setting('demo.since')::bigint);
	IF n <> 0 THEN
		RAISE EXCEPTION '% produced % event(s), expected none', current_setting('demo.what'), n;
	END IF;
END
$$;
SQL
	say "the change feed has no event after position $1"
}

createdb ledger_demo

step "1. An internal application already exists: the Ledger"
say "People and service accounts, roles, memberships and API keys, in schema \"Finance Ledger\"."
say "It stores password and API-key hashes; the connector must never show them."
say "The Ledger connects as its own role, ledger_app, which owns its schema and tables."
sql <<'SQL'
CREATE ROLE ledger_app NOLOGIN;
GRANT CREATE ON DATABASE ledger_demo TO ledger_app;
SQL
sql -c 'SET ROLE ledger_app' -f "$here/app.sql"
sql <<'SQL'
SELECT account_type AS kind, count(*) AS accounts FROM "Finance Ledger".users GROUP BY 1 ORDER BY 1;
SQL

step "2. The DBA installs the extension"
sql -c 'CREATE EXTENSION connector'
sql -c "SELECT extname, extversion FROM pg_extension WHERE extname = 'connector'"

step "3. The DBA maps the application with one call"
say "(One index for the SCIM gateway's case-insensitive userName look-ups, see docs/scim.md.)"
sql -c 'CREATE INDEX ON "Finance Ledger".users (lower(login))'
say "The mapping (docs/examples/mapping.json) names the tables and columns; nothing in the application changes."
sql -v spec="$(cat "$here/mapping.json")" <<'SQL'
\o /dev/null
SELECT connector.register_app('ledger', :'spec');
\o
SELECT a.app, t.key AS section, t.value AS "table"
  FROM connector.apps a, jsonb_each_text(a.tables) t ORDER BY 2;
SQL

step "4. The DBA gives the identity platform its role"
say "A login-less role stands for the platform's service user here; in production it would LOGIN."
sql <<'SQL'
CREATE ROLE okta_agent NOLOGIN;
GRANT connector_platform TO okta_agent;
SQL

step "5. The platform enumerates the accounts, a page at a time, in id order"
sql <<'SQL'
SET ROLE okta_agent;
SELECT id, name, enabled, kind, owner, attributes->>'Cost Center' AS "Cost Center", entitlements
  FROM connector.accounts('ledger', NULL, 5);
SQL
say "The next page starts after the last id seen (5):"
sql <<'SQL'
SET ROLE okta_agent;
SELECT id, name, enabled, kind, owner, attributes->>'Cost Center' AS "Cost Center", entitlements
  FROM connector.accounts('ledger', '5', 5);
SQL

step "6. Roles and API keys, as the platform sees them"
sql <<'SQL'
SET ROLE okta_agent;
SELECT id, name, privileged FROM connector.entitlements('ledger');
SELECT id, account, created::date, expires::date, last_used::date FROM connector.credentials('ledger');
SQL

step "7. Secrets stay in the application"
sql <<'SQL'
SET ROLE okta_agent;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM connector.accounts('ledger') a WHERE a::text ~ '\$2b\$|[0-9a-f]{64}')
	   OR EXISTS (SELECT 1 FROM connector.credentials('ledger') c WHERE c::text ~ '[0-9a-f]{64}') THEN
		RAISE EXCEPTION 'a password or key hash reached the platform';
	END IF;
END
$$;
SQL
say "no password or key hash appears in anything the platform can read"
sql -t <<'SQL'
SET ROLE okta_agent;
SELECT '   the platform role reading the application schema directly: ' ||
	   CASE WHEN has_schema_privilege('Finance Ledger', 'USAGE') THEN 'allowed' ELSE 'denied' END;
SQL

step "8. The platform notes where the change feed ends"
say "Since step 3 every change to the mapped tables, by the platform or anyone else, becomes an event."
start=$(feed_end)
say "the feed ends at position $start; the platform will read what comes after it"
say "It also subscribes to push: a webhook receiver on this machine (test/receiver/receiver.py,"
say "an independent implementation of Standard Webhooks) verifies the signature of every message."
rxdir=$(mktemp -d)
secret='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
python3 "$here/../../test/receiver/receiver.py" --port 0 --secret "$secret" --print \
	--log "$rxdir/log.jsonl" --pidfile "$rxdir/pid" > "$rxdir/out" &
trap 'kill $(cat "$rxdir/pid" 2>/dev/null) 2>/dev/null; rm -rf "$rxdir"' EXIT
for i in $(seq 1 50); do [ -s "$rxdir/out" ] && break; sleep 0.1; done
port=$(head -n 1 "$rxdir/out")
sql -v url="http://127.0.0.1:$port/hook" -v secret="$secret" -v start="$start" <<'SQL'
SELECT connector.add_endpoint('ledger', 'okta-hook', :'url', :'secret',
							  jsonb_build_object('from_position', :'start'::bigint));
SELECT app, endpoint, url, state FROM connector.status;
SQL

step "9. The platform grants a role: c.dubois gets ledger.clerk (request req-1001)"
say "Every write carries a request id, so that a retry cannot do it twice."
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.grant('ledger', '3', '2', request_id => 'req-1001') AS result;
SQL
say "The Ledger's own tables now say:"
app_rows 3

step "10. A time-bound grant: b.okafor may approve for the next 15 minutes (req-1002)"
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.grant('ledger', '2', '3', request_id => 'req-1002',
					   expires_at => now() + interval '15 minutes') AS result;
SQL
say "The expiry lands in the Ledger's own valid_until column:"
app_rows 2

step "11. The platform revokes a role: a.martin is no longer an approver (req-1003)"
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.revoke('ledger', '1', '3', request_id => 'req-1003') AS result;
SQL
app_rows 1

step "12. The platform disables an account: e.silva leaves the company (req-1004)"
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.disable('ledger', '5', request_id => 'req-1004') AS result;
SQL
say "Her account is suspended; the Ledger no longer lets her in."
app_rows 5

step "13. The platform offboards the service account she owned, svc-month-end (req-1005)"
say "One call: disable the account, revoke every role and every API key, all or nothing."
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.offboard('ledger', '20', request_id => 'req-1005') AS summary;
SQL
app_rows 20

step "14. A network error: the platform retries req-1001"
say "The retry returns the first call's outcome and changes nothing."
before=$(feed_end)
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.grant('ledger', '3', '2', request_id => 'req-1001') AS result;
SQL
app_rows 3
expect_no_events "$before" 'the retry of req-1001'

step "15. The application changes access itself, in plain SQL"
say "A maintenance script, running as ledger_app, gives svc-bank-feed the privileged ledger.admin role."
say "Nobody asked the platform, and the connector is not called."
sql <<'SQL'
SET ROLE ledger_app;
INSERT INTO "Finance Ledger".memberships (user_id, role_id) VALUES (21, 9);
SQL
app_rows 21

step "16. The platform reads the change feed"
say "Its own calls come back with origin \"platform\" (\"offboard\" for the offboarding);"
say "the application's own change comes back with origin \"direct\": shadow access, caught."
sql -v since="$start" <<'SQL'
SET ROLE okta_agent;
SELECT position,
	   event->>'type' AS type,
	   event#>>'{data,account,name}' AS account,
	   event#>>'{data,entitlement,name}' AS entitlement,
	   event#>>'{data,origin,via}' AS via,
	   event#>>'{data,origin,operation}' AS operation,
	   event#>>'{data,origin,request_id}' AS request_id,
	   event#>>'{data,origin,db_user}' AS db_user
  FROM connector.changes('ledger', :since);
SQL
sql -v since="$start" <<'SQL'
SET ROLE okta_agent;
SET demo.since = :'since';
DO $$
DECLARE
	feed jsonb[];
	e record;
	n int;
BEGIN
	SELECT array_agg(event ORDER BY position) INTO feed
	  FROM connector.changes('ledger', current_setting('demo.since')::bigint);
	-- every expected event exactly once, with its origin
	FOR e IN SELECT * FROM (VALUES
		('access.granted',     'c.dubois',      'ledger.clerk',    'platform', 'grant',   'req-1001'),
		('access.granted',     'b.okafor',      'ledger.approver', 'platform', 'grant',   'req-1002'),
		('access.revoked',     'a.martin',      'ledger.approver', 'platform', 'revoke',  'req-1003'),
		('account.disabled',   'e.silva',       NULL,              'platform', 'disable', 'req-1004'),
		('account.disabled',   'svc-month-end', NULL,              'offboard', 'offboard', 'req-1005'),
		('access.revoked',     'svc-month-end', 'ledger.clerk',    'offboard', 'offboard', 'req-1005'),
		('access.revoked',     'svc-month-end', 'ledger.admin',    'offboard', 'offboard', 'req-1005'),
		('credential.revoked', 'svc-month-end', NULL,              'offboard', 'offboard', 'req-1005'),
		('access.granted',     'svc-bank-feed', 'ledger.admin',    'direct',   NULL,      NULL)
	) AS x(type, account, entitlement, via, operation, request_id)
	LOOP
		SELECT count(*) INTO n FROM unnest(feed) ev
		 WHERE ev->>'type' = e.type
		   AND ev#>>'{data,account,name}' = e.account
		   AND ev#>>'{data,entitlement,name}' IS NOT DISTINCT FROM e.entitlement
		   AND ev#>>'{data,origin,via}' = e.via
		   AND ev#>>'{data,origin,operation}' IS NOT DISTINCT FROM e.operation
		   AND ev#>>'{data,origin,request_id}' IS NOT DISTINCT FROM e.request_id;
		IF n <> 1 THEN
			RAISE EXCEPTION 'expected one % event for % % with origin % %, found %',
				e.type, e.account, coalesce(e.entitlement, ''), e.via, coalesce(e.request_id, '(no request id)'), n;
		END IF;
	END LOOP;
	IF cardinality(feed) <> 9 THEN
		RAISE EXCEPTION 'expected 9 events after position %, found %',
			current_setting('demo.since'), cardinality(feed);
	END IF;
	-- the direct change names who made it; the time-bound grant carries its expiry
	IF NOT EXISTS (SELECT 1 FROM unnest(feed) ev
					WHERE ev#>>'{data,origin,via}' = 'direct'
					  AND ev#>>'{data,origin,db_user}' = 'ledger_app') THEN
		RAISE EXCEPTION 'the direct event does not name ledger_app as its db_user';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM unnest(feed) ev
					WHERE ev#>>'{data,origin,request_id}' = 'req-1002'
					  AND ev#>>'{data,expires_at}' IS NOT NULL) THEN
		RAISE EXCEPTION 'the time-bound grant req-1002 has no expires_at';
	END IF;
END
$$;
SQL
say "checked: each change above is in the feed exactly once, with the right origin"

step "17. A change that is rolled back leaves no event"
say "The script starts to give bot-reports ledger.admin too, then rolls back."
before=$(feed_end)
sql <<'SQL'
SET ROLE ledger_app;
BEGIN;
INSERT INTO "Finance Ledger".memberships (user_id, role_id) VALUES (22, 9);
SELECT count(*) AS "admin memberships of bot-reports, inside the transaction"
  FROM "Finance Ledger".memberships WHERE user_id = 22 AND role_id = 9;
ROLLBACK;
SQL
app_rows 22
expect_no_events "$before" 'the rolled-back direct change'

step "18. The platform submits its desired state (report only)"
say "What the platform believes: the people and service accounts it manages, with their roles."
say "It never approved svc-bank-feed's ledger.admin (step 15), and wants a.martin disabled."
desired=$(cat <<'JSON'
{"complete": true, "accounts": [
  {"id": "1", "enabled": false, "entitlements": ["1", "2"]},
  {"id": "2", "enabled": true,  "entitlements": ["1", "2", "3"]},
  {"id": "3", "enabled": true,  "entitlements": ["1", "2"]},
  {"id": "4", "enabled": false, "entitlements": ["2"]},
  {"id": "5", "enabled": false, "entitlements": []},
  {"id": "20", "enabled": false, "entitlements": []},
  {"id": "21", "enabled": true,  "entitlements": ["2"]},
  {"id": "30", "enabled": true,  "entitlements": ["1"]}]}
JSON
)
sql -v desired="$desired" <<'SQL'
SET ROLE okta_agent;
SELECT action, account, entitlement, detail FROM connector.reconcile('ledger', :'desired');
SQL
sql -v desired="$desired" <<'SQL'
SET ROLE okta_agent;
SET demo.desired = :'desired';
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM connector.reconcile('ledger', current_setting('demo.desired')::jsonb)
					WHERE action = 'revoke' AND account = '21' AND entitlement = '9') THEN
		RAISE EXCEPTION 'the report does not show the shadow grant of step 15';
	END IF;
END
$$;
SQL
say "the drift: a.martin should be disabled; e.silva, suspended, still holds ledger.admin;"
say "svc-bank-feed holds ledger.admin, which nobody asked for; bot-reports is unmanaged; account 30 does not exist."

step "19. Findings: the non-human identity risks, mapped to the OWASP NHI Top 10 (2025)"
say "Meanwhile a Ledger admin issued bot-reports a new API key, in plain SQL, with no expiry."
sql <<'SQL'
SET ROLE ledger_app;
INSERT INTO "Finance Ledger".api_keys (user_id, key_prefix, key_hash)
VALUES (22, 'lk_live_5e21', encode(sha256('demo-secret-4'), 'hex'));
SQL
sql <<'SQL'
SET ROLE okta_agent;
SELECT code, severity, account, reference, detail->>'reason' AS why,
	   coalesce(detail->>'credential', detail->>'entitlement') AS "credential/entitlement"
  FROM connector.findings('ledger')
 ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, code, account;
SQL
sql <<'SQL'
SET ROLE okta_agent;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM connector.findings('ledger') WHERE code = 'shadow_grant' AND account = '21') THEN
		RAISE EXCEPTION 'no shadow_grant finding for svc-bank-feed';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM connector.findings('ledger') WHERE code = 'orphaned_account' AND account = '21') THEN
		RAISE EXCEPTION 'no orphaned_account finding for svc-bank-feed (its owner d.novak is suspended)';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM connector.findings('ledger') WHERE code = 'long_lived_credential'
					  AND detail->>'reason' = 'the credential never expires') THEN
		RAISE EXCEPTION 'no finding for a never-expiring API key';
	END IF;
END
$$;
SQL
say "checked: the shadow grant, the orphaned service account and the never-expiring key are all flagged"

step "20. The platform enforces its desired state (request rc-2001)"
say "Each difference goes through the same write path as a single call, with origin \"reconcile\";"
say "bot-reports is unmanaged: reported, never touched."
before=$(feed_end)
sql -v desired="$desired" <<'SQL'
SET ROLE okta_agent;
SELECT action, account, entitlement, detail->>'outcome' AS outcome
  FROM connector.reconcile('ledger', :'desired', enforce => true, request_id => 'rc-2001')
 WHERE action NOT IN ('unmanaged_account', 'unknown_account');
SQL
app_rows "1, 2, 21, 22"
sql -v since="$before" <<'SQL'
SET ROLE okta_agent;
SELECT event->>'type' AS type, event#>>'{data,account,name}' AS account,
	   event#>>'{data,entitlement,name}' AS entitlement, event#>>'{data,origin,via}' AS via
  FROM connector.changes('ledger', :since);
SQL
sql -v desired="$desired" <<'SQL'
SET ROLE okta_agent;
SET demo.desired = :'desired';
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM connector.reconcile('ledger', current_setting('demo.desired')::jsonb)
				WHERE action IN ('grant', 'revoke', 'disable', 'enable')) THEN
		RAISE EXCEPTION 'drift remains after enforcement';
	END IF;
	IF (SELECT entitlements FROM connector.accounts('ledger') WHERE id = '22') IS DISTINCT FROM ARRAY['1'] THEN
		RAISE EXCEPTION 'the unmanaged account was changed';
	END IF;
END
$$;
SQL
say "checked: no drift is left, and the unmanaged bot-reports kept its role"

step "21. Just-in-time access: a 5-second grant expires by itself"
say "The platform gives c.dubois ledger.approver for 5 seconds; nobody revokes it."
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.grant('ledger', '3', '3', request_id => 'req-1006',
					   expires_at => now() + interval '5 seconds') AS result;
SQL
app_rows 3
say "waiting for the dispatcher (it checks expiries every connector.naptime)..."
SECONDS=0
for i in $(seq 1 40); do
	left=$(sql -tA -c 'SELECT count(*) FROM "Finance Ledger".memberships WHERE user_id = 3 AND role_id = 3')
	[ "$left" = 0 ] && break
	sleep 0.5
done
if [ "$left" != 0 ]; then
	say "the dispatcher did not expire it within 20 s"
	exit 1
else
	say "the dispatcher revoked it by itself, ${SECONDS} s after the grant"
fi
app_rows 3
sql <<'SQL'
SET ROLE okta_agent;
SELECT event->>'type' AS type, event#>>'{data,account,name}' AS account,
	   event#>>'{data,entitlement,name}' AS entitlement, event#>>'{data,origin,via}' AS via
  FROM connector.changes('ledger', 0, 100000)
 WHERE event#>>'{data,origin,via}' = 'expiry';
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM connector.changes('ledger', 0, 100000)
					WHERE event->>'type' = 'access.revoked' AND event#>>'{data,origin,via}' = 'expiry'
					  AND event#>>'{data,account,name}' = 'c.dubois') THEN
		RAISE EXCEPTION 'no access.revoked event with origin expiry';
	END IF;
END
$$;
SQL
say "the grant ended on time, with an access.revoked event whose origin is \"expiry\""

step "22. SCIM: Okta and Entra ID provision the Ledger through connector-gateway"
say "The DBA gives the gateway a login with the platform role, and the platform a token (shown once)."
say "(Plain HTTP on loopback for the demo; in production the gateway serves TLS, see docs/scim.md.)"
sql <<'SQL'
CREATE ROLE scim_gateway LOGIN PASSWORD 'demo-gateway';
GRANT connector_platform TO scim_gateway;
SQL
token=$(sql -tA -c "SELECT connector.add_token('ledger', 'okta-scim')")
say "token for okta-scim: ${token:0:8}… (only its hash is stored)"
sql -c "SELECT app, name, expires, revoked FROM connector.tokens"
gwport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$(pg_config --bindir)/connector-gateway" --listen "127.0.0.1:$gwport" --insecure-http --pool 2 \
	--database "host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$PGDATABASE user=scim_gateway password=demo-gateway" \
	2>"$rxdir/gateway.log" &
gwpid=$!
# stop the gateway too when the demo ends (the receiver's trap of step 8, extended)
trap 'kill $gwpid 2>/dev/null; kill $(cat "$rxdir/pid" 2>/dev/null) 2>/dev/null; rm -rf "$rxdir"' EXIT
for i in $(seq 50); do curl -fs "http://127.0.0.1:$gwport/healthz" >/dev/null && break; sleep 0.1; done
scim_base="http://127.0.0.1:$gwport/scim/v2/ledger"
since=$(feed_end)
# One SCIM call as the platform makes it; prints "STATUS BODY" (body shortened).
scim() {
	local method=$1 path=$2 body=${3:-}
	curl -s -o "$rxdir/scim.json" -w '%{http_code}' -X "$method" "$scim_base$path" \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/scim+json' \
		${body:+--data "$body"}
}
show() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("     " + json.dumps(d)[:300])' "$rxdir/scim.json" 2>/dev/null || true; }
expect() { [ "$1" = "$2" ] || { say "expected HTTP $2, got $1:"; cat "$rxdir/scim.json"; exit 1; }; }

say "Okta looks a user up by userName:"
code=$(scim GET '/Users?filter=userName%20eq%20%22a.martin%22&startIndex=1&count=100'); expect "$code" 200; show
say "Okta creates f.ng:"
code=$(scim POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"f.ng","name":{"formatted":"Fay Ng"},"emails":[{"type":"work","value":"fay.ng@example.com","primary":true}],"active":true}')
expect "$code" 201; show
newid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$rxdir/scim.json")
say "Okta pushes a group membership: f.ng joins ledger.viewer (group 1):"
code=$(scim PATCH /Groups/1 '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"'"$newid"'"}]}]}')
case "$code" in 200|204) ;; *) expect "$code" 204 ;; esac
say "Entra ID removes her from it again, in its own dialect (capitalised op, \"\$ref\": null):"
code=$(scim PATCH /Groups/1 '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"'"$newid"'"}]}]}')
case "$code" in 200|204) ;; *) expect "$code" 204 ;; esac
say "Okta deactivates f.ng with a path-less replace:"
code=$(scim PATCH /Users/$newid '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}')
expect "$code" 200; show
say "A wrong token gets 401:"
code=$(curl -s -o "$rxdir/scim.json" -w '%{http_code}' "$scim_base/Users/1" -H 'Authorization: Bearer ctk_wrong'); expect "$code" 401; show
say "Each change is in the event stream, with the gateway's token as its client:"
sql -v since="$since" <<'SQL'
SET ROLE okta_agent;
SELECT event->>'type' AS type, event#>>'{data,account,name}' AS account,
	   event#>>'{data,entitlement,name}' AS entitlement,
	   event#>>'{data,origin,via}' AS via, event#>>'{data,origin,client}' AS client
  FROM connector.changes('ledger', :since) ORDER BY position;
SQL
sql -v since="$since" <<'SQL'
SET ROLE okta_agent;
SET demo.since = :'since';
DO $$
DECLARE
	want text[] := ARRAY['account.created', 'access.granted', 'access.revoked', 'account.disabled'];
	got text[];
BEGIN
	SELECT array_agg(event->>'type' ORDER BY position) INTO got
	  FROM connector.changes('ledger', current_setting('demo.since')::bigint)
	 WHERE event#>>'{data,origin,via}' = 'platform' AND event#>>'{data,origin,client}' = 'scim:okta-scim';
	IF NOT got @> want THEN
		RAISE EXCEPTION 'SCIM changes missing from the feed: got %', got;
	END IF;
END
$$;
SQL
say "checked: create, group add, group remove and deactivate are events with origin scim:okta-scim"
say "the gateway's request log (no token in it):"
sed 's/^/     /' "$rxdir/gateway.log" | tail -n 8

step "23. Push: every change reached the platform as a signed webhook"
say "Since step 8 the dispatcher has pushed each event to the receiver, in order, as it was committed."
want=$(sql -tA -v start="$start" <<'SQL'
SET ROLE okta_agent;
SELECT count(*) FROM connector.changes('ledger', :start, 100000);
SQL
)
for i in $(seq 1 100); do
	got=$(sql -tA -c "SELECT delivered FROM connector.status WHERE endpoint = 'okta-hook'")
	[ "$got" -ge "$want" ] && break
	sleep 0.2
done
say "what the receiver printed, one line per verified event:"
tail -n +2 "$rxdir/out" | sed 's/^/     /'
sql <<'SQL'
SELECT endpoint, state, delivered, pending_events, dead_lettered, consecutive_failures,
	   last_status, to_char(last_success, 'HH24:MI:SS') AS last_success
  FROM connector.status;
SQL
python3 - "$rxdir/log.jsonl" "$want" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
ok = [e for e in entries if 200 <= e["status"] < 300]
if len(ok) < int(sys.argv[2]) or not all(e["verified"] for e in ok):
    sys.exit("the receiver did not get every event with a valid signature")
PY
say "$want events, $want signed messages, every signature verified by the receiver"

step "24. Shared Signals: a receiver gets the same changes as signed Security Event Tokens"
say "The DBA gives the Ledger a signing key; an SSF receiver (Okta ITP, SGNL, SailPoint...) holds a token."
sql -c "SELECT connector.add_signing_key('ledger') AS kid" -c "SELECT app, alg, state FROM connector.signing_keys"
ssftoken=$(sql -tA -c "SELECT connector.add_token('ledger', 'sgnl-ssf')")
say "The receiver reads the transmitter's metadata, creates a poll stream and asks for verification:"
python3 "$here/ssf_receiver.py" setup "http://127.0.0.1:$gwport" "$ssftoken" "$rxdir/ssf.json"
say "The platform disables b.okafor; the application grants svc-bank-feed ledger.admin by itself (shadow access):"
sql <<'SQL'
SET ROLE okta_agent;
SELECT connector.disable('ledger', '2', request_id => 'req-1007') AS result;
RESET ROLE;
SET ROLE ledger_app;
INSERT INTO "Finance Ledger".memberships (user_id, role_id) VALUES (21, 9) ON CONFLICT DO NOTHING;
SQL
say "The receiver polls (RFC 8936) and verifies each SET against the JWK Set from the gateway:"
python3 "$here/ssf_receiver.py" poll "http://127.0.0.1:$gwport" "$ssftoken" "$rxdir/ssf.json" | tee "$rxdir/ssf.out"
for want in account-disabled session-revoked 'prov:patch:notice'; do
	grep -q "verified $want" "$rxdir/ssf.out" || grep -q "verified .*$want" "$rxdir/ssf.out" ||
		{ say "no verified $want SET"; exit 1; }
done
say "checked: the disable became RISC account-disabled and CAEP session-revoked, the shadow grant a SCIM prov:patch:notice on its group"

printf '\n== Done.\n'
