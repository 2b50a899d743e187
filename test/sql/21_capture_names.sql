-- Names of accounts and entitlements in membership events, looked up at the
-- end of each statement for every id the name cache lacks: by probes in
-- index order for a few ids, by one scan of the table for many; the name is
-- the one the capturing statement saw, whatever later statements do.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(15);

CREATE SCHEMA n;
CREATE TABLE n.users (id int PRIMARY KEY, login text NOT NULL, kind text);
INSERT INTO n.users SELECT g, 'u' || g, CASE WHEN g % 2 = 0 THEN 'service' END FROM generate_series(1, 20000) g;
CREATE TABLE n.roles (code text PRIMARY KEY, name text NOT NULL);
INSERT INTO n.roles SELECT 'r' || g, 'role ' || g FROM generate_series(1, 300) g;
CREATE TABLE n.user_roles (user_id int NOT NULL, role text NOT NULL);
ANALYZE n.users, n.roles;
SELECT connector.register_app('names', '{
	"accounts": {"table": "n.users", "id": "id", "name": "login", "kind": "kind"},
	"entitlements": {"table": "n.roles", "id": "code", "name": "name"},
	"grants": {"table": "n.user_roles", "account": "user_id", "entitlement": "role"}}');

CREATE FUNCTION pg_temp.last_pos() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(max(position), 0) FROM connector.changes('names', 0, 100000)
$$;
-- account and entitlement of the events after position p, as text
CREATE FUNCTION pg_temp.named(p bigint) RETURNS TABLE (type text, account jsonb, entitlement jsonb)
LANGUAGE sql AS $$
	SELECT event->>'type', event #> '{data,account}', event #> '{data,entitlement}'
	  FROM connector.changes('names', p, 100000) ORDER BY position
$$;
-- what each grant event should say, from the tables as they are now
CREATE FUNCTION pg_temp.expected(ids int[], codes text[]) RETURNS TABLE (account jsonb, entitlement jsonb)
LANGUAGE sql AS $$
	SELECT jsonb_build_object('id', i::text, 'name', u.login, 'kind', u.kind),
		   jsonb_build_object('id', c, 'name', r.name)
	  FROM unnest(ids, codes) WITH ORDINALITY x(i, c, o)
	  LEFT JOIN n.users u ON u.id = x.i LEFT JOIN n.roles r ON r.code = x.c
	 ORDER BY o
$$;

-- A few ids in random order (index probes), some with no row.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO n.user_roles VALUES (907, 'r5'), (13, 'r9'), (50000, 'r1'), (401, 'nope'), (13, 'r2');
SELECT is(ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.named(:p)),
		  ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.expected('{907,13,50000,401,13}', '{r5,r9,r1,nope,r2}')),
		  'a few ids: every account and entitlement named, an id with no row named null');
SELECT is((SELECT account FROM pg_temp.named(:p) OFFSET 2 LIMIT 1),
		  '{"id": "50000", "name": null, "kind": null}', 'an account with no row: id only');

-- Some ids in one statement: the index walked in their order, on from one
-- id to the next or down again after a gap; ids with no row in between.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO n.user_roles
SELECT i, 'r' || (1 + i % 300)
  FROM (SELECT CASE WHEN g % 7 = 0 THEN 40000 + g WHEN g % 2 = 0 THEN g * 97 ELSE 19990 + g % 11 END
		  FROM generate_series(1, 200) g ORDER BY md5(g::text)) x(i);
SELECT is(ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.named(:p)),
		  ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.expected(
			ARRAY(SELECT i FROM (SELECT CASE WHEN g % 7 = 0 THEN 40000 + g WHEN g % 2 = 0 THEN g * 97 ELSE 19990 + g % 11 END
								   FROM generate_series(1, 200) g ORDER BY md5(g::text)) x(i)),
			ARRAY(SELECT 'r' || (1 + i % 300) FROM (SELECT CASE WHEN g % 7 = 0 THEN 40000 + g WHEN g % 2 = 0 THEN g * 97 ELSE 19990 + g % 11 END
								   FROM generate_series(1, 200) g ORDER BY md5(g::text)) x(i)))),
		  'some ids, in no order, some with no row: every one named as in its table');

-- Many distinct ids in one statement: one scan of a table too large for the
-- name cache (20,000 rows), for 3,000 of its ids.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO n.user_roles SELECT 1 + (g * 37) % 20000, 'r' || (1 + g % 300) FROM generate_series(1, 3000) g;
SELECT is(ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.named(:p)),
		  ARRAY(SELECT row(account, entitlement)::text FROM pg_temp.expected(
			ARRAY(SELECT 1 + (g * 37) % 20000 FROM generate_series(1, 3000) g),
			ARRAY(SELECT 'r' || (1 + g % 300) FROM generate_series(1, 3000) g))),
		  'many ids: every one named as in its table');

-- A rename in a later statement of the same transaction does not reach the
-- events of an earlier one; a delete does not lose their names.
SELECT connector._flush();
SELECT pg_temp.last_pos() AS p \gset
SAVEPOINT a;
INSERT INTO n.user_roles SELECT g, 'r1' FROM generate_series(30001, 30100) g;	-- no rows: not cached
INSERT INTO n.users SELECT g, 'new' || g, NULL FROM generate_series(30001, 30100) g;
INSERT INTO n.user_roles VALUES (30001, 'r2');
UPDATE n.users SET login = 'renamed' WHERE id IN (30001, 30002);
DELETE FROM n.user_roles WHERE user_id IN (30001, 30002);
DELETE FROM n.users WHERE id = 30001;
INSERT INTO n.user_roles VALUES (30001, 'r3');
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p) WHERE account->>'id' IN ('30001', '30002')),
		  ARRAY[NULL, NULL, 'new30001', 'new30002', 'new30001', 'renamed', 'renamed', 'renamed', 'renamed',
				'renamed', 'renamed', NULL],
		  'each statement names accounts as it saw them');
SELECT is(ARRAY(SELECT type FROM pg_temp.named(:p) WHERE account->>'id' IN ('30001', '30002')),
		  ARRAY['access.granted', 'access.granted', 'account.created', 'account.created', 'access.granted',
				'account.updated', 'account.updated', 'access.revoked', 'access.revoked', 'access.revoked',
				'account.deleted', 'access.granted'],
		  '... in this order of events');
ROLLBACK TO SAVEPOINT a;

-- COPY: its names are looked up when it ends, before the next statement.
SELECT pg_temp.last_pos() AS p \gset
COPY n.user_roles FROM stdin;
11	r1
12	r1
\.
UPDATE n.users SET login = 'later' WHERE id IN (11, 12);
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p) WHERE type = 'access.granted'),
		  ARRAY['u11', 'u12'], 'COPY: names as at the COPY');

-- TRUNCATE: the revokes are named.
SELECT pg_temp.last_pos() AS p \gset
DELETE FROM n.user_roles WHERE ctid <> (SELECT min(ctid) FROM n.user_roles WHERE user_id = 12);
SELECT pg_temp.last_pos() AS p \gset
TRUNCATE n.user_roles;
UPDATE n.users SET login = 'after truncate' WHERE id = 12;
SELECT is(ARRAY(SELECT account::text FROM pg_temp.named(:p) WHERE type = 'access.revoked'),
		  ARRAY['{"id": "12", "kind": "service", "name": "later"}'], 'TRUNCATE: revokes named as before it');

-- A rolled-back subtransaction's holes do not disturb the others.
SELECT pg_temp.last_pos() AS p \gset
SAVEPOINT b;
INSERT INTO n.user_roles VALUES (21, 'r1');
ROLLBACK TO SAVEPOINT b;
INSERT INTO n.user_roles VALUES (22, 'r1');
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p)), ARRAY['u22'], 'rolled back: only the kept event, named');

-- A subtransaction that fails in the middle of a statement.
CREATE FUNCTION pg_temp.grant_or_not(u int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO n.user_roles VALUES (u, 'r1');
	IF u = 32 THEN
		RAISE EXCEPTION 'no';
	END IF;
EXCEPTION WHEN raise_exception THEN
	NULL;
END
$$;
SELECT pg_temp.last_pos() AS p \gset
SELECT pg_temp.grant_or_not(g) FROM generate_series(31, 33) g;
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p)), ARRAY['u31', 'u33'],
		  'a failed subtransaction inside the statement: the others named');

-- The events of a statement and of the transaction's end agree with the
-- name cache: the same account named the same in a second transaction.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO n.user_roles VALUES (41, 'r1');
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p)), ARRAY['u41'], 'looked up once');
INSERT INTO n.user_roles VALUES (41, 'r2');
SELECT is(ARRAY(SELECT account->>'name' FROM pg_temp.named(:p)), ARRAY['u41', 'u41'], 'then from the cache');

-- Text and uuid ids, in index order through the collation.
CREATE TABLE n.t_users (id text COLLATE "C" PRIMARY KEY, login text NOT NULL);
INSERT INTO n.t_users VALUES ('b', 'bee'), ('a', 'ay'), ('C', 'see');
INSERT INTO n.t_users SELECT 'k' || g, 'key ' || g FROM generate_series(1, 20000) g;
CREATE TABLE n.t_roles (id uuid PRIMARY KEY, name text NOT NULL);
INSERT INTO n.t_roles SELECT md5(g::text)::uuid, 'role ' || g FROM generate_series(1, 5) g;
CREATE TABLE n.t_grants (u text NOT NULL, r uuid NOT NULL);
SELECT connector.register_app('tnames', '{
	"accounts": {"table": "n.t_users", "id": "id", "name": "login"},
	"entitlements": {"table": "n.t_roles", "id": "id", "name": "name"},
	"grants": {"table": "n.t_grants", "account": "u", "entitlement": "r"}}');
INSERT INTO n.t_grants SELECT u, md5(g::text)::uuid FROM unnest('{b,a,C,x}'::text[]) WITH ORDINALITY x(u, g);
SELECT is(ARRAY(SELECT (event #>> '{data,account,name}') || '/' || (event #>> '{data,entitlement,name}')
				  FROM connector.changes('tnames') ORDER BY position),
		  ARRAY['bee/role 1', 'ay/role 2', 'see/role 3', NULL], 'text and uuid ids named');
SELECT is((SELECT event #> '{data,account}' FROM connector.changes('tnames') ORDER BY position DESC LIMIT 1),
		  '{"id": "x", "name": null, "kind": null}', 'a text id with no row');
SELECT connector._flush();
INSERT INTO n.t_grants SELECT 'k' || (g * 131 % 25000), md5('1')::uuid FROM generate_series(1, 60) g;
SELECT is(ARRAY(SELECT event #>> '{data,account,name}' FROM connector.changes('tnames') ORDER BY position OFFSET 4),
		  ARRAY(SELECT u.login FROM generate_series(1, 60) g LEFT JOIN n.t_users u ON u.id = 'k' || (g * 131 % 25000) ORDER BY g),
		  'text ids walked in the order of their collation');

SELECT * FROM finish();
ROLLBACK;
