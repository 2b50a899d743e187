#!/usr/bin/env bash
# Enumeration benchmark: page through N accounts (about 2 grants each) with
# connector.accounts(app, after, 1000), as a platform does, and compare with a
# plain COPY of the same rows in id order, measured in the same run.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/enumerate.sh
#
# N (default 1000000) and PAGE (default 1000) may be set in the environment.
set -euo pipefail
N=${N:-1000000}
PAGE=${PAGE:-1000}
export PGDATABASE=connector_bench
sql() { PGOPTIONS="-c bench.page=$PAGE" psql -X -q -v ON_ERROR_STOP=1 -v n="$N" "$@"; }

createdb connector_bench
echo "== building $N accounts with 0..4 grants each (2 on average)"
sql <<'SQL'
CREATE EXTENSION connector;
CREATE SCHEMA bench;
CREATE TABLE bench.roles (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO bench.roles SELECT g, 'role-' || g FROM generate_series(1, 200) g;
CREATE TABLE bench.users (
	id			bigint PRIMARY KEY,
	login		text NOT NULL,
	active		boolean NOT NULL,
	kind		text NOT NULL,
	owner_id	bigint,
	email		text,
	dept		text,
	pw_hash		text
);
INSERT INTO bench.users
SELECT g, 'user' || g, g % 17 <> 0, CASE WHEN g % 10 = 0 THEN 'service' ELSE 'human' END,
	   CASE WHEN g % 10 = 0 THEN g - 1 END, 'user' || g || '@example.com', 'dept-' || g % 50,
	   md5(g::text)
  FROM generate_series(1, :n) g;
CREATE TABLE bench.memberships (user_id bigint NOT NULL, role_id int NOT NULL);
INSERT INTO bench.memberships
SELECT g, 1 + (g * 7 + k * 31) % 200 FROM generate_series(1, :n) g, generate_series(1, 4) k
 WHERE k <= g % 5;
CREATE INDEX ON bench.memberships (user_id);
VACUUM ANALYZE bench.users, bench.memberships, bench.roles;
\o /dev/null
SELECT connector.register_app('bench', '{
  "accounts": {"table": "bench.users", "id": "id", "name": "login",
               "status": {"column": "active", "enabled": true, "disabled": false},
               "kind": "kind", "owner": "owner_id", "attributes": ["email", "dept"]},
  "entitlements": {"table": "bench.roles", "id": "id", "name": "name"},
  "grants": {"table": "bench.memberships", "account": "user_id", "entitlement": "role_id"}}');
\o
SELECT count(*) AS accounts, (SELECT count(*) FROM bench.memberships) AS grants FROM bench.users;
SQL

echo "== timing (one session; each figure is wall-clock time inside the server)"
sql <<'SQL'
-- Warm the cache once so both measurements read from shared buffers.
COPY (SELECT * FROM bench.users) TO PROGRAM 'cat > /dev/null';
COPY (SELECT * FROM bench.memberships) TO PROGRAM 'cat > /dev/null';

CREATE TEMP TABLE timing (what text PRIMARY KEY, ms numeric);

-- What a platform does: ask for a page, carry the last id, ask again.
DO $$
DECLARE
	after text;
	got int;
	total bigint := 0;
	pages int := 0;
	t0 timestamptz := clock_timestamp();
	tp timestamptz;
	ids text[];
	first_ms numeric;
	last_ms numeric;
BEGIN
	LOOP
		tp := clock_timestamp();
		SELECT array_agg(a.id) INTO ids
		  FROM connector.accounts('bench', after, current_setting('bench.page')::int) a;
		got := coalesce(cardinality(ids), 0);
		EXIT WHEN got = 0;
		pages := pages + 1;
		total := total + got;
		after := ids[got];
		IF pages = 1 THEN
			first_ms := extract(epoch FROM clock_timestamp() - tp) * 1000;
		END IF;
		IF got = current_setting('bench.page')::int THEN
			last_ms := extract(epoch FROM clock_timestamp() - tp) * 1000;	-- last full page
		END IF;
	END LOOP;
	INSERT INTO timing VALUES
		('paging', extract(epoch FROM clock_timestamp() - t0) * 1000),
		('first page', first_ms), ('last page', last_ms),
		('pages', pages), ('rows', total);
END
$$;

-- Baseline 1: the same rows and columns, one COPY in id order.
DO $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	COPY (SELECT id::text, login, active, kind, owner_id::text,
				 jsonb_build_object('email', email, 'dept', dept)
			FROM bench.users ORDER BY id) TO PROGRAM 'cat > /dev/null';
	INSERT INTO timing VALUES ('copy', extract(epoch FROM clock_timestamp() - t0) * 1000);
END
$$;

-- Baseline 2: the same COPY with the entitlements, by the same correlated subquery.
DO $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	COPY (SELECT u.id::text, u.login, u.active, u.kind, u.owner_id::text,
				 jsonb_build_object('email', u.email, 'dept', u.dept),
				 ARRAY(SELECT s.e::text FROM (SELECT DISTINCT m.role_id AS e FROM bench.memberships m
											   WHERE m.user_id = u.id ORDER BY 1) s)
			FROM bench.users u ORDER BY u.id) TO PROGRAM 'cat > /dev/null';
	INSERT INTO timing VALUES ('copy with entitlements', extract(epoch FROM clock_timestamp() - t0) * 1000);
END
$$;

\pset footer off
SELECT (SELECT ms FROM timing WHERE what = 'rows')::bigint AS accounts,
	   (SELECT ms FROM timing WHERE what = 'pages')::int AS pages,
	   round((SELECT ms FROM timing WHERE what = 'paging') / 1000, 2) AS "paging s",
	   round((SELECT ms FROM timing WHERE what = 'copy') / 1000, 2) AS "COPY s",
	   round((SELECT ms FROM timing WHERE what = 'copy with entitlements') / 1000, 2) AS "COPY+ent s",
	   round((SELECT ms FROM timing WHERE what = 'paging') / (SELECT ms FROM timing WHERE what = 'copy'), 2) AS "paging/COPY",
	   round((SELECT ms FROM timing WHERE what = 'paging') / (SELECT ms FROM timing WHERE what = 'copy with entitlements'), 2) AS "paging/COPY+ent",
	   round((SELECT ms FROM timing WHERE what = 'first page'), 2) AS "first page ms",
	   round((SELECT ms FROM timing WHERE what = 'last page'), 2) AS "last page ms";
SQL
