-- Attack 11 of issue 13 (item 8 of the contract): the owner of a mapped
-- partitioned table adds a partition, and rows of the new partition are
-- captured like any other.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
\ir fixtures/partitioned.sql
SELECT plan(7);

CREATE TEMP TABLE mark AS SELECT coalesce(max(position), 0) AS p FROM connector.changes('part', 0, 100000);
SET ROLE regress_owner;
SELECT is(pg_temp.outcome($$CREATE TABLE part.members_c PARTITION OF part.members FOR VALUES IN ('c')$$), 'done',
		  'the owner adds a partition to its mapped partitioned table');
SELECT is(pg_temp.outcome($$CREATE TABLE part.members_rest PARTITION OF part.members DEFAULT$$), 'done',
		  'and a default partition');
RESET ROLE;
SET ROLE regress_app;
SELECT is(pg_temp.outcome($$INSERT INTO part.members VALUES (1, 'c'), (2, 'z')$$), 'done',
		  'the application inserts grants that land in the new partitions');
RESET ROLE;
SELECT is((SELECT string_agg(concat_ws(' ', event->>'type', event #>> '{data,account,id}', event #>> '{data,entitlement,id}',
									   event #>> '{data,origin,via}'), ', ' ORDER BY position)
			 FROM connector.changes('part', (SELECT p FROM mark), 100000)),
		  'access.granted 1 c direct, access.granted 2 z direct',
		  'rows inserted into the new partitions produce events');
SELECT is((SELECT count(*) FROM connector.findings('part') WHERE code = 'capture_gap'), 0::bigint,
		  'the new partitions leave no capture_gap');
SET ROLE regress_platform;
SELECT is(connector.revoke('part', '1', 'c'), 'revoked', 'the platform revokes a grant held in the new partition');
RESET ROLE;

-- A table that already holds rows, attached as a partition: its rows become
-- grants without having been inserted into the mapped table.  The owner is
-- refused, or the rows are accounted for (events, or a recorded gap).
UPDATE mark SET p = (SELECT coalesce(max(position), 0) FROM connector.changes('part', 0, 100000));
SET ROLE regress_owner;
CREATE TABLE part.members_x (person_id int NOT NULL, role text NOT NULL);
INSERT INTO part.members_x VALUES (2, 'x');
SELECT pg_temp.outcome($$ALTER TABLE part.members ATTACH PARTITION part.members_x FOR VALUES IN ('x')$$) AS attach \gset
RESET ROLE;
SELECT ok(:'attach' ~ '^42501: '
		  OR EXISTS (SELECT 1 FROM connector.changes('part', (SELECT p FROM mark), 100000)
					  WHERE event->>'type' = 'access.granted' AND event #>> '{data,entitlement,id}' = 'x')
		  OR EXISTS (SELECT 1 FROM connector.findings('part') WHERE code = 'capture_gap'),
		  'attaching a partition that holds rows: refused to the owner, or its rows are captured or a capture_gap');

SELECT * FROM finish();
ROLLBACK;
