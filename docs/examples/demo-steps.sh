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

printf '\n== Done.\n'
