-- SSF streams as an attacker holding the platform's login and a token of one
-- application: a token is valid for its one app, so a token named "okta" of
-- app "other" must not make the caller the receiver "okta" of app "crm"
-- (streams are owned by the token name that created them).
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(5);

SELECT connector.register_app('crm', pg_temp.crm_spec());
CREATE TABLE public.other_users (id int PRIMARY KEY, name text NOT NULL);
SELECT connector.register_app('other', '{"accounts": {"table": "public.other_users", "id": "id", "name": "name"}}');
SELECT connector.add_signing_key('crm', 'ES256');
SELECT connector.add_token('crm', 'okta') AS crm_okta \gset
SELECT connector.add_token('other', 'okta') AS other_okta \gset

SET ROLE regress_platform;
-- the real receiver "okta" of crm makes a stream
SELECT connector.scim_session('crm', :'crm_okta');
SELECT connector.ssf_stream_create('crm', '{}', 'https://gw.example.com/ssf/crm') ->> 'stream_id' AS sid \gset
SELECT is(jsonb_array_length(connector.ssf_stream_get('crm')), 1, 'crm''s okta sees its stream');

-- the attacker holds other's token of the same name
SELECT connector.scim_session('other', :'other_okta');
SELECT throws_ok($$SELECT connector.ssf_stream_get('crm')$$, '28000',
				 'no bearer token of application "crm" was checked in this transaction',
				 'a token of another app with the same name does not read crm''s streams');
SELECT throws_ok(format($$SELECT connector.ssf_poll('crm', %L, 10, true, NULL, NULL)$$, :'sid'), '28000', NULL,
				 'nor poll them');
SELECT throws_ok(format($$SELECT connector.ssf_stream_delete('crm', %L)$$, :'sid'), '28000', NULL,
				 'nor delete them');
-- with crm's own token checked again, the stream is there, untouched
SELECT connector.scim_session('crm', :'crm_okta');
SELECT is(jsonb_array_length(connector.ssf_stream_get('crm')), 1, 'the stream is untouched');
SELECT * FROM finish();
ROLLBACK;
