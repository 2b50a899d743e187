-- disable and enable on every status shape, and their bad inputs.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(29);

-- Boolean status column.
SELECT is(connector.disable('crm', '2'), 'disabled', 'boolean: disable');
SELECT is((SELECT active FROM "Crm App".users WHERE id = 2), false, 'boolean: the column holds the disabled value');
SELECT is(connector.disable('crm', '2'), 'unchanged', 'boolean: disable again');
SELECT is(connector.enable('crm', '2'), 'enabled', 'boolean: enable');
SELECT is((SELECT active FROM "Crm App".users WHERE id = 2), true, 'boolean: the column holds the enabled value');
SELECT is(connector.enable('crm', '2'), 'unchanged', 'boolean: enable again');
SELECT is((SELECT enabled FROM connector.accounts('crm') WHERE id = '9'), false, 'carol starts disabled');
SELECT is(connector.enable('crm', '9'), 'enabled', 'boolean: enable a disabled account');

-- Text status with two values; a third value counts as neither.
CREATE TABLE public.tacc (id int PRIMARY KEY, n text NOT NULL, st text);
INSERT INTO public.tacc VALUES (1, 'a', 'pending'), (2, 'b', 'active');
SELECT connector.register_app('txt', '{"accounts": {"table": "public.tacc", "id": "id", "name": "n",
	"status": {"column": "st", "enabled": "active", "disabled": "locked"}}}');
SELECT is(connector.enable('txt', '1'), 'enabled', 'text: enable from a third value');
SELECT is(connector.disable('txt', '2'), 'disabled', 'text: disable');
SELECT is((SELECT array_agg(st ORDER BY id) FROM public.tacc), ARRAY['active', 'locked'], 'text: values stored');
SELECT is(connector.disable('txt', '2'), 'unchanged', 'text: disable again');

-- Enum status.
CREATE TYPE public.state AS ENUM ('on', 'off');
CREATE TABLE public.eacc (id text PRIMARY KEY, n text NOT NULL, s public.state NOT NULL DEFAULT 'on');
INSERT INTO public.eacc VALUES ('x', 'a');
SELECT connector.register_app('enm', '{"accounts": {"table": "public.eacc", "id": "id", "name": "n",
	"status": {"column": "s", "enabled": "on", "disabled": "off"}}}');
SELECT is(connector.disable('enm', 'x'), 'disabled', 'enum: disable');
SELECT is((SELECT s FROM public.eacc), 'off'::public.state, 'enum: value stored');
SELECT is(connector.enable('enm', 'x'), 'enabled', 'enum: enable');

-- Nullable timestamp status: NULL is enabled, disabling stores now().
CREATE TABLE public.sacc (id bigint PRIMARY KEY, n text NOT NULL, disabled_at timestamptz);
INSERT INTO public.sacc VALUES (1, 'a', NULL);
SELECT connector.register_app('ts', '{"accounts": {"table": "public.sacc", "id": "id", "name": "n",
	"status": {"column": "disabled_at", "disabled": "timestamp"}}}');
SELECT is(connector.disable('ts', '1'), 'disabled', 'timestamp: disable');
SELECT is((SELECT disabled_at FROM public.sacc), now(), 'timestamp: now() stored');
SELECT is(connector.disable('ts', '1'), 'unchanged', 'timestamp: disable again keeps the first time');
SELECT is(connector.enable('ts', '1'), 'enabled', 'timestamp: enable');
SELECT is((SELECT disabled_at FROM public.sacc), NULL, 'timestamp: NULL again');
SELECT is(connector.enable('ts', '1'), 'unchanged', 'timestamp: enable again');

-- Bad inputs.
CREATE TEMP TABLE before AS SELECT array_agg(active ORDER BY id) AS a FROM "Crm App".users;
SELECT throws_ok($$SELECT connector.disable('crm', '99')$$, 'P0002',
				 'account "99" not found in application "crm"', 'unknown account');
SELECT throws_ok($$SELECT connector.disable('crm', NULL)$$, '22004', 'account must not be null', 'NULL account');
SELECT throws_ok($$SELECT connector.enable('crm', '1.5')$$, '22P02',
				 'account "1.5" is not a valid integer in application "crm"', 'id that does not parse');
SELECT throws_ok($$SELECT connector.disable('nope', '1')$$, '42704', 'application "nope" is not registered',
				 'unknown app');
SELECT is((SELECT array_agg(active ORDER BY id) FROM "Crm App".users), (SELECT a FROM before),
		  'the failed calls changed nothing');
CREATE TABLE public.nacc (id int PRIMARY KEY, n text NOT NULL);
INSERT INTO public.nacc VALUES (1, 'a');
SELECT connector.register_app('nost', '{"accounts": {"table": "public.nacc", "id": "id", "name": "n"}}');
SELECT throws_ok($$SELECT connector.disable('nost', '1')$$, '0A000', 'application "nost" maps no account status',
				 'disable without a status mapping');
SELECT throws_ok($$SELECT connector.enable('nost', '1')$$, '0A000', 'application "nost" maps no account status',
				 'enable without a status mapping');
SELECT throws_ok($$SELECT connector.disable('nost', '99')$$, '0A000', NULL,
				 'the missing mapping is reported before the account');

SELECT * FROM finish();
ROLLBACK;
