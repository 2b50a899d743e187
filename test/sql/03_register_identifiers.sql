-- Awkward identifiers (spaces, double quotes, mixed case, non-ASCII) in schema,
-- table and column names: registration and enumeration through them.
BEGIN;
CREATE EXTENSION connector;

CREATE SCHEMA "Ops ""Team"" Ünï";
CREATE TABLE "Ops ""Team"" Ünï"."User ""Accounts""" (
	"User ID"		int PRIMARY KEY,
	"Login Name"	text NOT NULL,
	"State"			text NOT NULL,
	"Kind ""of"""	text,
	"Owner Ref"		int,
	"E-Mail"		text,
	"Cost Center"	text,
	"Secret Hash"	text
);
CREATE TABLE "Ops ""Team"" Ünï"."Rôles" (
	"Rôle Id"		text PRIMARY KEY,
	"Name"			text NOT NULL,
	"Privileged?"	boolean
);
CREATE TABLE "Ops ""Team"" Ünï"."Member Ship" (
	"User ID"		int NOT NULL,
	"Rôle Id"		text NOT NULL,
	"Valid Until"	timestamptz
);
CREATE INDEX ON "Ops ""Team"" Ünï"."Member Ship" ("User ID");
CREATE TABLE "Ops ""Team"" Ünï"."API Keys" (
	"Key Id"		uuid PRIMARY KEY,
	"Holder"		int NOT NULL,
	"Created At"	timestamptz NOT NULL,
	"Revoked At"	timestamptz,
	"Key Hash"		text NOT NULL
);
-- Same name as the table above up to case: the mapping must pick the right one.
CREATE TABLE "Ops ""Team"" Ünï"."user ""accounts""" ("User ID" int PRIMARY KEY, "Login Name" text);
INSERT INTO "Ops ""Team"" Ünï"."user ""accounts""" VALUES (1, 'wrong table');

INSERT INTO "Ops ""Team"" Ünï"."User ""Accounts""" VALUES
	(3, 'zoë', 'Active', 'human', NULL, 'zoe@example.com', 'CC 1', 'h'),
	(20, 'svc "quoted"', 'Locked', 'service', 3, NULL, 'CC 2', 'h'),
	(100, 'Ünï bot', 'Active', 'service', 20, NULL, NULL, 'h');
INSERT INTO "Ops ""Team"" Ünï"."Rôles" VALUES ('Admin Rôle', 'Admin', true), ('read "only"', 'Reader', NULL);
INSERT INTO "Ops ""Team"" Ünï"."Member Ship" VALUES
	(3, 'Admin Rôle', NULL), (3, 'read "only"', NULL), (100, 'read "only"', now() + interval '1 day');
INSERT INTO "Ops ""Team"" Ünï"."API Keys" VALUES
	('00000000-0000-0000-0000-000000000002', 100, '2026-01-01', NULL, 'secret'),
	('00000000-0000-0000-0000-000000000001', 20, '2025-01-01', '2025-06-01', 'secret');

SELECT plan(12);

SELECT lives_ok($$SELECT connector.register_app('Ops "Team" Ünï app', '{
  "accounts": {"table": "\"Ops \"\"Team\"\" Ünï\".\"User \"\"Accounts\"\"\"", "id": "User ID", "name": "Login Name",
               "status": {"column": "State", "enabled": "Active", "disabled": "Locked"},
               "kind": "Kind \"of\"", "owner": "Owner Ref", "attributes": ["E-Mail", "Cost Center"]},
  "entitlements": {"table": "\"Ops \"\"Team\"\" Ünï\".\"Rôles\"", "id": "Rôle Id", "name": "Name",
                   "privileged": "Privileged?"},
  "grants": {"table": "\"Ops \"\"Team\"\" Ünï\".\"Member Ship\"", "account": "User ID",
             "entitlement": "Rôle Id", "expires": "Valid Until"},
  "credentials": {"table": "\"Ops \"\"Team\"\" Ünï\".\"API Keys\"", "id": "Key Id", "account": "Holder",
                  "created": "Created At", "revoked": "Revoked At"}
}')$$, 'spaces, double quotes, mixed case and non-ASCII in schema, table and column names');

SELECT is((SELECT tables->>'accounts' FROM connector.apps WHERE app = 'Ops "Team" Ünï app'),
		  '"Ops ""Team"" Ünï"."User ""Accounts"""', 'the mixed-case table is mapped, not its lowercase twin');

SELECT results_eq(
	$$SELECT id, name, enabled, kind, owner, attributes, entitlements FROM connector.accounts('Ops "Team" Ünï app')$$,
	$$VALUES ('3', 'zoë', true, 'human', NULL::text, '{"E-Mail": "zoe@example.com", "Cost Center": "CC 1"}'::jsonb,
			  ARRAY['Admin Rôle', 'read "only"']),
			 ('20', 'svc "quoted"', false, 'service', '3', '{"E-Mail": null, "Cost Center": "CC 2"}', '{}'),
			 ('100', 'Ünï bot', true, 'service', '20', '{"E-Mail": null, "Cost Center": null}', ARRAY['read "only"'])$$,
	'accounts through awkward identifiers: status, kind, owner, attributes by column name, entitlements');
SELECT results_eq($$SELECT id FROM connector.accounts('Ops "Team" Ünï app', '3', 1)$$, $$VALUES ('20')$$,
				  'keyset page through an awkward id column');
SELECT results_eq($$SELECT id FROM connector.accounts('Ops "Team" Ünï app', '20', 5)$$, $$VALUES ('100')$$,
				  'the last page');
SELECT results_eq($$SELECT id, name, privileged FROM connector.entitlements('Ops "Team" Ünï app')$$,
				  $$VALUES ('Admin Rôle', 'Admin', true), ('read "only"', 'Reader', false)$$,
				  'entitlements with text ids and a "Privileged?" column');
SELECT results_eq($$SELECT id FROM connector.entitlements('Ops "Team" Ünï app', 'Admin Rôle')$$,
				  $$VALUES ('read "only"')$$, 'entitlements paged after a text id with a space');
SELECT results_eq($$SELECT id, account, revoked IS NOT NULL FROM connector.credentials('Ops "Team" Ünï app')$$,
				  $$VALUES ('00000000-0000-0000-0000-000000000001', '20', true),
						   ('00000000-0000-0000-0000-000000000002', '100', false)$$,
				  'credentials in uuid order');
SELECT results_eq($$SELECT id FROM connector.credentials('Ops "Team" Ünï app', '00000000-0000-0000-0000-000000000001')$$,
				  $$VALUES ('00000000-0000-0000-0000-000000000002')$$, 'credentials paged after a uuid');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.accounts('Ops "Team" Ünï app') WHERE attributes::text LIKE '%Secret%'),
		  'the unmapped hash column is never exposed');
SELECT throws_ok($$SELECT * FROM connector.credentials('Ops "Team" Ünï app', 'not-a-uuid')$$, '22P02',
				 'after "not-a-uuid" is not a valid uuid in application "Ops "Team" Ünï app"', 'after that is not a uuid');
SELECT lives_ok($$SELECT connector.unregister_app('Ops "Team" Ünï app')$$, 'unregister by an awkward app name');

SELECT * FROM finish();
ROLLBACK;
