-- Capture cannot be silenced by DDL a table owner may run: retyping or
-- rewriting mapped columns, renaming an enum status value, inheriting from
-- or detaching partitions of a mapped table, disabling capture on one
-- partition.  The owner is refused; a superuser is recorded (capture.tampered
-- and a capture_gap finding until the application is registered again).
-- The owner can still add partitions, and their rows are captured.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(25);
CREATE ROLE regress_o;
CREATE SCHEMA p AUTHORIZATION regress_o;
SET ROLE regress_o;
CREATE TYPE p.st AS ENUM ('on', 'off');
CREATE TABLE p.acc (id int PRIMARY KEY, n text NOT NULL, s p.st NOT NULL DEFAULT 'on');
CREATE TABLE p.gr (a int NOT NULL, e int NOT NULL, x int) PARTITION BY RANGE (a);
CREATE TABLE p.gr1 PARTITION OF p.gr FOR VALUES FROM (0) TO (100);
RESET ROLE;
SELECT connector.register_app('p', '{"accounts": {"table": "p.acc", "id": "id", "name": "n",
	"status": {"column": "s", "enabled": "on", "disabled": "off"}},
	"grants": {"table": "p.gr", "account": "a", "entitlement": "e"}}');

SET ROLE regress_o;
SELECT lives_ok($$CREATE TABLE p.gr2 PARTITION OF p.gr FOR VALUES FROM (100) TO (200)$$,
				'the owner adds a partition to a mapped table');
INSERT INTO p.acc VALUES (150, 'x');
INSERT INTO p.gr VALUES (150, 1);
SELECT throws_ok($$ALTER TABLE p.gr2 DISABLE TRIGGER connector_capture$$, '42501', NULL,
				 'disabling capture on a partition is refused');
SELECT throws_ok($$ALTER TABLE p.gr DETACH PARTITION p.gr2$$, '42501', NULL, 'detaching a partition is refused');
SELECT throws_ok($$CREATE TABLE p.child () INHERITS (p.acc)$$, '42501', NULL,
				 'a table inheriting a mapped table is refused');
SELECT throws_ok($$ALTER TABLE p.gr ALTER COLUMN e TYPE bigint$$, '42501', NULL,
				 'retyping a mapped column is refused');
SELECT throws_ok($$ALTER TABLE p.acc ALTER COLUMN s TYPE p.st USING 'off'$$, '42501', NULL,
				 'rewriting the status column''s values is refused');
SELECT throws_ok($$ALTER TABLE p.acc ALTER COLUMN n TYPE varchar$$, '42501', NULL,
				 'retyping the name column is refused');
SELECT throws_ok($$ALTER TYPE p.st RENAME VALUE 'on' TO 'off2'$$, '42501', NULL,
				 'renaming a mapped status value is refused');
SELECT lives_ok($$ALTER TABLE p.acc ADD COLUMN z int DEFAULT 1$$, 'unrelated DDL is allowed');
RESET ROLE;

SELECT is((SELECT count(*) FROM connector.changes('p') WHERE event->>'type' = 'access.granted'
			  AND event#>>'{data,account,id}' = '150'), 1::bigint,
		  'a row of the new partition is captured');

-- TRUNCATE of one partition, or of the table: each row once
SET ROLE regress_o;
INSERT INTO p.acc VALUES (5, 'y');
INSERT INTO p.gr VALUES (5, 1), (5, 2), (150, 2);
SELECT lives_ok($$TRUNCATE p.gr2$$, 'the owner truncates a partition');
DROP TRIGGER connector_capture_truncate ON p.gr2;
SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'p.gr2'::regclass
			  AND tgname = 'connector_capture_truncate'), 'A',
		  'a partition''s truncate trigger the owner drops is put back at once');
RESET ROLE;
SELECT is((SELECT array_agg(event#>>'{data,account,id}' || ':' || (event#>>'{data,entitlement,id}')
							ORDER BY event#>>'{data,account,id}', event#>>'{data,entitlement,id}')
			 FROM connector.changes('p') WHERE event->>'type' = 'access.revoked'),
		  ARRAY['150:1', '150:2'], 'TRUNCATE of a partition revokes its grants');
TRUNCATE p.gr;
SELECT is((SELECT array_agg(event#>>'{data,account,id}' || ':' || (event#>>'{data,entitlement,id}')
							ORDER BY event#>>'{data,account,id}', event#>>'{data,entitlement,id}')
			 FROM connector.changes('p') WHERE event->>'type' = 'access.revoked'),
		  ARRAY['150:1', '150:2', '5:1', '5:2'], 'TRUNCATE of the table revokes every grant once');
SET ROLE regress_o;
CREATE TABLE p.gr3 PARTITION OF p.gr FOR VALUES FROM (200) TO (300);
RESET ROLE;
SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'p.gr3'::regclass
			  AND tgname = 'connector_capture_truncate'), 'A', 'a new partition gets its truncate trigger');

-- a table attached as a partition brings its rows: each becomes an event
SET ROLE regress_o;
CREATE TABLE p.gr4 (a int NOT NULL, e int NOT NULL, x int);
INSERT INTO p.gr4 VALUES (300, 3), (301, 4);
SELECT lives_ok($$ALTER TABLE p.gr ATTACH PARTITION p.gr4 FOR VALUES FROM (300) TO (400)$$,
				'the owner attaches a table that holds rows');
RESET ROLE;
SELECT is((SELECT array_agg(concat_ws(' ', event#>>'{data,account,id}', event#>>'{data,entitlement,id}',
									 event#>>'{data,origin,via}', event#>>'{data,origin,db_user}')
							ORDER BY event#>>'{data,account,id}')
			 FROM connector.changes('p') WHERE event->>'type' = 'access.granted'
			  AND (event#>>'{data,account,id}')::int >= 300),
		  ARRAY['300 3 direct regress_o', '301 4 direct regress_o'],
		  'its rows are granted, directly, by the role that attached it');

-- done by a superuser: allowed, and recorded
ALTER TABLE p.gr DETACH PARTITION p.gr2;
ALTER TYPE p.st RENAME VALUE 'on' TO 'xon';
ALTER TABLE p.gr ALTER COLUMN x TYPE bigint;
ALTER TABLE p.gr ALTER COLUMN e TYPE bigint;
SELECT is((SELECT array_agg(detail->>'problem' ORDER BY detail->>'problem')
			 FROM connector.findings('p') WHERE code = 'capture_gap'),
		  ARRAY['mapped column "e" changed type from integer to bigint',
				'partition p.gr2 detached or dropped, its rows without events',
				'status value "on" renamed',
				'values rewritten by ALTER TABLE, without events'],
		  'each weakness is a capture_gap finding');
SELECT is((SELECT count(*) FROM connector.changes('p') WHERE event->>'type' = 'capture.tampered'),
		  4::bigint, 'and a capture.tampered event');
CREATE TABLE p.child () INHERITS (p.acc);
SELECT is((SELECT count(*) FROM connector.findings('p') WHERE code = 'capture_gap'
			  AND detail->>'problem' = 'inherited by table p.child, whose rows are not captured'),
		  1::bigint, 'an inheriting table is a gap');
DROP TABLE p.child;
SELECT is((SELECT count(*) FROM connector.findings('p') WHERE code = 'capture_gap'
			  AND detail->>'problem' LIKE 'inherited%'), 0::bigint, 'gone with the table');

-- registering again accepts the tables as they are now
SELECT connector.register_app('p', '{"accounts": {"table": "p.acc", "id": "id", "name": "n",
	"status": {"column": "s", "enabled": "xon", "disabled": "off"}},
	"grants": {"table": "p.gr", "account": "a", "entitlement": "e"}}');
SELECT is((SELECT count(*) FROM connector.findings('p') WHERE code = 'capture_gap'), 0::bigint,
		  'registering again clears the gaps');

-- capture() on a table no application mapped writes nothing
CREATE TABLE public.fake (a int, e int);
SELECT throws_ok($$CREATE TRIGGER f AFTER INSERT ON public.fake FOR EACH ROW
				   EXECUTE FUNCTION connector.capture('p', 'grants');
				   INSERT INTO public.fake VALUES (1, 1)$$, '42501',
				 'table public.fake is not mapped as grants of application "p"',
				 'a capture trigger on an unmapped table refuses to write events');
SELECT is((SELECT count(*) FROM connector.changes('p') WHERE event#>>'{data,account,id}' = '1'),
		  0::bigint, 'and no event was written');
\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'the C reader renders every event and body as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
