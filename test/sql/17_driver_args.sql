-- Arguments bound as strings (sql/parts/80_driver_args.sql): JDBC's setString
-- binds character varying, which has no implicit cast to jsonb, timestamptz,
-- bigint or interval.  The overloads accept it; no existing call changes
-- meaning (which function a call resolves to is read from
-- pg_stat_xact_user_functions); the outcome, the idempotency record and
-- every error are those of the original.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(57);
SET LOCAL track_functions = 'all';
SET LOCAL TimeZone = 'UTC';

-- How often each function of the extension ran in this transaction so far.
CREATE FUNCTION pg_temp.calls(f regprocedure) RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce((SELECT s.calls FROM pg_stat_xact_user_functions s WHERE s.funcid = f), 0)
$$;
-- Run a statement; return which of the two functions (original, overload)
-- it called: 'original', 'overload', 'both' or 'none'.
CREATE FUNCTION pg_temp.resolves(stmt text, original regprocedure, overload regprocedure)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	o0 bigint := pg_temp.calls(original);
	v0 bigint := pg_temp.calls(overload);
	o boolean;
	v boolean;
BEGIN
	EXECUTE stmt;
	o := pg_temp.calls(original) > o0;
	v := pg_temp.calls(overload) > v0;
	RETURN CASE WHEN v AND o THEN 'overload' WHEN o THEN 'original' WHEN v THEN 'overload only?' ELSE 'none' END;
END $$;

-- The overloads: what they are.
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text COLLATE "C")
			 FROM pg_proc p WHERE p.pronamespace = 'connector'::regnamespace
			  AND 'character varying'::regtype = ANY (p.proargtypes::regtype[])),
		  ARRAY['connector."grant"(text,text,text,text,character varying)',
				'connector.add_endpoint(text,text,text,text,character varying)',
				'connector.apply(text,character varying)',
				'connector.changes(text,character varying)',
				'connector.changes(text,character varying,integer)',
				'connector.create_account(text,text,character varying)',
				'connector.create_account(text,text,character varying,text)',
				'connector.create_entitlement(text,text,character varying)',
				'connector.create_entitlement(text,text,character varying,text)',
				'connector.reconcile(text,character varying)',
				'connector.reconcile(text,character varying,boolean)',
				'connector.reconcile(text,character varying,boolean,text)',
				'connector.redeliver(text,text,character varying)',
				'connector.register_app(text,character varying)',
				'connector.rotate_secret(text,text,text,character varying)',
				'connector.update_account(text,text,character varying)',
				'connector.update_account(text,text,character varying,text)',
				'connector.update_entitlement(text,text,character varying)',
				'connector.update_entitlement(text,text,character varying,text)'],
		  'one overload per function and number of arguments that can carry a string-bound value');
SELECT is((SELECT array_agg(p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND 'character varying'::regtype = ANY (p.proargtypes::regtype[])
			  AND p.pronargdefaults > 0), NULL,
		  'no overload has defaults: a call leaving out an argument matches the original only');
SELECT is((SELECT array_agg(v.oid::regprocedure::text) FROM pg_proc v
			WHERE v.pronamespace = 'connector'::regnamespace
			  AND 'character varying'::regtype = ANY (v.proargtypes::regtype[])
			  AND NOT EXISTS (SELECT 1 FROM pg_proc o
							   WHERE o.pronamespace = v.pronamespace AND o.proname = v.proname
								 AND NOT 'character varying'::regtype = ANY (o.proargtypes::regtype[])
								 AND o.proargnames[1:v.pronargs] = v.proargnames[1:v.pronargs]
								 AND o.pronargs >= v.pronargs AND o.prorettype = v.prorettype
								 AND o.pronargs - o.pronargdefaults <= v.pronargs)), NULL,
		  'each overload has the names, positions and result of an original it can stand for');
SELECT is((SELECT array_agg(v.oid::regprocedure::text) FROM pg_proc v
			WHERE v.pronamespace = 'connector'::regnamespace
			  AND 'character varying'::regtype = ANY (v.proargtypes::regtype[])
			  AND (has_function_privilege('connector_platform', v.oid, 'EXECUTE')
				   <> (SELECT bool_or(has_function_privilege('connector_platform', o.oid, 'EXECUTE'))
						 FROM pg_proc o WHERE o.pronamespace = v.pronamespace AND o.proname = v.proname
						  AND NOT 'character varying'::regtype = ANY (o.proargtypes::regtype[]))
				   OR has_function_privilege('connector_admin', v.oid, 'EXECUTE')
				   <> (SELECT bool_or(has_function_privilege('connector_admin', o.oid, 'EXECUTE'))
						 FROM pg_proc o WHERE o.pronamespace = v.pronamespace AND o.proname = v.proname
						  AND NOT 'character varying'::regtype = ANY (o.proargtypes::regtype[])))),
		  NULL, 'each overload is granted to exactly the roles of its original');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND 'character varying'::regtype = ANY (p.proargtypes::regtype[])
			  AND 'log_min_error_statement=panic' = ANY (p.proconfig)),
		  ARRAY['add_endpoint', 'rotate_secret'], 'the overloads taking a secret keep statements out of the log too');

-- Which function a call resolves to.
SELECT is(pg_temp.resolves($$SELECT connector.create_account('crm', 'dave', '{"id": 50}')$$,
						   'connector.create_account(text,text,jsonb,text)',
						   'connector.create_account(text,text,character varying)'),
		  'overload', 'a literal JSON argument goes to the overload (string category preferred)');
SELECT is(pg_temp.resolves($$SELECT connector.create_account('crm', 'erin', '{"id": 51}'::jsonb)$$,
						   'connector.create_account(text,text,jsonb,text)',
						   'connector.create_account(text,text,character varying)'),
		  'original', 'a jsonb argument goes to the original');
SELECT is(pg_temp.resolves($$SELECT connector.create_account('crm', 'frank', jsonb_build_object('id', 52))$$,
						   'connector.create_account(text,text,jsonb,text)',
						   'connector.create_account(text,text,character varying)'),
		  'original', 'a jsonb expression goes to the original');
SELECT is(pg_temp.resolves($$SELECT connector.update_account('crm', '50', '{"email": "d@example.com"}')$$,
						   'connector.update_account(text,text,jsonb,text)',
						   'connector.update_account(text,text,character varying)'),
		  'overload', 'update_account with a literal goes to the overload');
SELECT is(pg_temp.resolves($$SELECT connector.grant('crm', '50', '1')$$,
						   'connector.grant(text,text,text,text,timestamptz)',
						   'connector.grant(text,text,text,text,character varying)'),
		  'original', 'a call leaving out optional arguments goes to the original');
SELECT is(pg_temp.resolves($$SELECT connector.grant('crm', '50', '2', 'r-g2')$$,
						   'connector.grant(text,text,text,text,timestamptz)',
						   'connector.grant(text,text,text,text,character varying)'),
		  'original', 'a request id in fourth place stays a request id');
SELECT is(pg_temp.resolves($$SELECT connector.grant('crm', '50', '2', 'r-g2b', now() + interval '1 day')$$,
						   'connector.grant(text,text,text,text,timestamptz)',
						   'connector.grant(text,text,text,text,character varying)'),
		  'original', 'a timestamptz expression goes to the original');
SELECT is(pg_temp.resolves($$SELECT connector.grant('crm', '50', '7', request_id => 'r-g7', expires_at => '2099-01-01 00:00:00+00')$$,
						   'connector.grant(text,text,text,text,timestamptz)',
						   'connector.grant(text,text,text,text,character varying)'),
		  'overload', 'named notation reaches the overload, with the same names');
SELECT is(pg_temp.resolves($$SELECT * FROM connector.changes('crm', 0, 10)$$,
						   'connector.changes(text,bigint,integer)',
						   'connector.changes(text,character varying,integer)'),
		  'original', 'an integer position goes to the original');
SELECT is(pg_temp.resolves($$SELECT * FROM connector.changes('crm', '0', 10)$$,
						   'connector.changes(text,bigint,integer)',
						   'connector.changes(text,character varying,integer)'),
		  'overload', 'a quoted position goes to the overload');
SELECT is(pg_temp.resolves($$SELECT * FROM connector.changes('crm')$$,
						   'connector.changes(text,bigint,integer)',
						   'connector.changes(text,character varying)'),
		  'original', 'changes(app) goes to the original');
SELECT is(pg_temp.resolves($$SELECT * FROM connector.reconcile('crm', '{"accounts": []}')$$,
						   'connector.reconcile(text,jsonb,boolean,text)',
						   'connector.reconcile(text,character varying)'),
		  'overload', 'reconcile with a literal goes to the overload');

-- Bound as character varying, as JDBC's setString sends them.
PREPARE ca(text, varchar, text) AS SELECT connector.create_account('crm', $1, $2, $3);
PREPARE ua(text, varchar, text) AS SELECT connector.update_account('crm', $1, $2, $3);
PREPARE gr(text, text, text, varchar) AS SELECT connector.grant('crm', $1, $2, $3, $4);
PREPARE ap(varchar) AS SELECT connector.apply('crm', $1);
PREPARE ch(varchar, int) AS SELECT count(*) FROM connector.changes('crm', $1, $2);
PREPARE rc(varchar, boolean, text) AS
	SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ') FROM connector.reconcile('crm', $1, $2, $3);

SELECT is(pg_temp.resolves($$EXECUTE ca('gina', '{"id": 53, "email": "g@example.com"}', 'r-ca')$$,
						   'connector.create_account(text,text,jsonb,text)',
						   'connector.create_account(text,text,character varying,text)'),
		  'overload', 'create_account with attributes bound as varchar');
SELECT is((SELECT email FROM "Crm App".users WHERE id = 53), 'g@example.com', 'the account is created as asked');
SELECT is(connector.create_account('crm', 'gina', '{"email": "g@example.com", "id": 53}'::jsonb, 'r-ca'), '53',
		  'a retry through the original (same JSON, other spelling) returns the first outcome');
SELECT throws_ok($$SELECT connector.create_account('crm', 'gina', '{"id": 54}'::varchar, 'r-ca')$$, '23505',
				 'request "r-ca" of application "crm" was already made with other arguments',
				 'the same request id with other attributes is refused, as by the original');
SELECT is(connector.update_account('crm', '53', '{"Department Name": "Ops"}'::varchar), 'updated', 'update_account (3 arguments)');
SELECT is(connector.create_account('crm', 'hal', '{"id": 55}'::varchar), '55', 'create_account (3 arguments)');
SELECT throws_ok($$SELECT connector.create_account('crm', 'ida', NULL::varchar, 'r-null')$$, '22004',
				 'attribute "id" is required in application "crm"', 'NULL attributes mean {}, as in the original');
SELECT is(pg_temp.resolves($$EXECUTE ua('53', '{"email": "gina@example.com"}', 'r-ua')$$,
						   'connector.update_account(text,text,jsonb,text)',
						   'connector.update_account(text,text,character varying,text)'),
		  'overload', 'update_account with attributes bound as varchar');
SELECT is((SELECT email FROM "Crm App".users WHERE id = 53), 'gina@example.com', 'the account is updated');
SELECT throws_ok($$EXECUTE ua('53', NULL, NULL)$$, '22004', 'attributes must not be null',
				 'NULL attributes: the original''s error');

SELECT is(pg_temp.resolves($$EXECUTE gr('53', '1', 'r-exp', '2099-06-01 12:00:00+02')$$,
						   'connector.grant(text,text,text,text,timestamptz)',
						   'connector.grant(text,text,text,text,character varying)'),
		  'overload', 'grant with expires_at bound as varchar');
SELECT is((SELECT valid_until FROM "Crm App".user_roles WHERE user_id = 53 AND role_id = 1),
		  '2099-06-01 10:00:00+00'::timestamptz, 'the expiry is stored as the instant given');
SELECT is(connector.grant('crm', '53', '1', 'r-exp', '2099-06-01 10:00:00Z'::varchar), 'granted',
		  'a retry with the same instant written otherwise returns the first outcome');
SELECT is(connector.grant('crm', '53', '1', 'r-exp', '2099-06-01 10:00:00+00'::timestamptz), 'granted',
		  'and so does a retry through the original');
SELECT throws_ok($$EXECUTE gr('53', '1', 'r-exp', '2099-06-01 11:00:00+00')$$, '23505',
				 'request "r-exp" of application "crm" was already made with other arguments',
				 'a retry with another expiry is another request');
SELECT throws_ok($$EXECUTE gr('53', '2', 'r-past', '2001-01-01 00:00:00+00')$$, '22023',
				 'expires_at 2001-01-01 00:00:00+00 is in the past', 'an expiry in the past: the original''s error');
SELECT is(connector.grant('crm', '53', '2', 'r-perm', NULL::varchar), 'granted', 'a NULL expiry is a permanent grant');

SELECT is(pg_temp.resolves($$EXECUTE ap('[{"op": "revoke", "account": 53, "entitlement": "2", "request_id": "r-ap"}]')$$,
						   'connector.apply(text,jsonb)', 'connector.apply(text,character varying)'),
		  'overload', 'apply with operations bound as varchar');
SELECT throws_ok($$EXECUTE ap('{"op": "grant"}')$$, '22023', 'operations must be a JSON array, not object',
				 'apply: the original''s error for an object');

SELECT is(pg_temp.resolves($$EXECUTE rc('{"accounts": [{"id": "53", "entitlements": ["1"]}]}', false, NULL)$$,
						   'connector.reconcile(text,jsonb,boolean,text)',
						   'connector.reconcile(text,character varying,boolean,text)'),
		  'overload', 'reconcile with the desired state bound as varchar');
SELECT is((SELECT r::text FROM connector.reconcile('crm', '{"accounts": [{"id": "53", "entitlements": ["1", "2"]}]}'::varchar, false, NULL) r),
		  '(grant,53,2,"{""actual"": false, ""desired"": true}")', 'reconcile reports what the original reports');

SELECT is(pg_temp.resolves($$EXECUTE ch('0', 1000)$$,
						   'connector.changes(text,bigint,integer)', 'connector.changes(text,character varying,integer)'),
		  'overload', 'changes with the position bound as varchar');
SELECT is((SELECT array_agg(c.position ORDER BY c.position) FROM connector.changes('crm', '3'::varchar) c),
		  (SELECT array_agg(c.position ORDER BY c.position) FROM connector.changes('crm', 3) c),
		  'the same events as the original');

-- Strings that do not parse: the argument is named; the SQLSTATE is the one
-- the type's input function gives a literal (the original's, for a literal).
SELECT throws_ok($$EXECUTE ca('ivy', '{"id": 56,', NULL)$$, '22P02',
				 'attributes "{"id": 56," is not a valid jsonb', 'JSON that does not parse');
SELECT throws_ok($$SELECT connector.create_account('crm', 'ivy', '{bad')$$, '22P02',
				 'attributes "{bad" is not a valid jsonb', 'the same for a literal');
SELECT throws_ok($$EXECUTE gr('53', '7', NULL, 'next week')$$, '22007',
				 'expires_at "next week" is not a valid timestamp with time zone', 'a timestamp that does not parse');
SELECT throws_ok($$EXECUTE ch('ten', 10)$$, '22P02', 'after "ten" is not a valid bigint', 'a position that does not parse');
SELECT throws_ok($$EXECUTE ch('99999999999999999999', 10)$$, '22003',
				 'after "99999999999999999999" is not a valid bigint', 'a position out of range');
SELECT throws_ok($$EXECUTE ch('-1', 10)$$, '22023', 'position -1 is out of range', 'a negative position: the original''s error');
SELECT throws_ok($$EXECUTE ch(NULL, 10)$$, '22004', 'after must not be null', 'a NULL position: the original''s error');
SELECT throws_ok($$EXECUTE ap('[')$$, '22P02', 'operations "[" is not a valid jsonb', 'operations that do not parse');
SELECT throws_ok($$EXECUTE rc('{', false, NULL)$$, '22P02', 'desired "{" is not a valid jsonb', 'a desired state that does not parse');

-- Administration.
SELECT lives_ok($$SELECT connector.register_app('crm', pg_temp.crm_spec()::text::varchar)$$, 'register_app with the spec bound as varchar');
SELECT lives_ok($$SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/crm', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
				  '{"batch_size": 10, "headers": {"authorization": "Bearer t0ken"}}'::varchar)$$,
				'add_endpoint with the options bound as varchar');
SELECT is((SELECT batch_size FROM connector.status WHERE endpoint = 'hook'), 10, 'the options are those given');
SELECT throws_ok($$SELECT connector.add_endpoint('crm', 'hook2', 'https://hooks.example.com/crm', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
				   '{"headers": {"authorization": Bearer t0ken}}'::varchar)$$, '22P02',
				 'endpoint options is not a valid jsonb', 'options that do not parse: the message does not echo them');
SELECT lives_ok($$SELECT connector.rotate_secret('crm', 'hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '2 hours'::varchar)$$,
				'rotate_secret with the overlap bound as varchar');
SELECT throws_ok($$SELECT connector.rotate_secret('crm', 'hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '-1 hour'::varchar)$$,
				 '22023', 'overlap must not be negative', 'a negative overlap: the original''s error');
SELECT throws_ok($$SELECT connector.rotate_secret('crm', 'hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a while'::varchar)$$,
				 '22007', 'overlap "a while" is not a valid interval', 'an overlap that does not parse');
SELECT throws_ok($$SELECT connector.redeliver('crm', 'hook', 'first'::varchar)$$, '22P02',
				 'from_position "first" is not a valid bigint', 'redeliver: a position that does not parse');

SELECT * FROM finish();
ROLLBACK;
