-- Catalog: the mappings of the applications.

CREATE TABLE @extschema@.app (
	app				text PRIMARY KEY
					CHECK (octet_length(app) BETWEEN 1 AND 63),
	spec			jsonb NOT NULL,
	registered_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.app IS
	'Registered applications and their mapping spec, as given to register_app.';

-- The tables of each mapping, by OID so a rename does not break the mapping.
CREATE TABLE @extschema@.app_table (
	app		text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	role	text NOT NULL
			CHECK (role IN ('accounts', 'entitlements', 'grants', 'credentials')),
	relid	regclass NOT NULL UNIQUE,
	-- what capture relied on at registration, for the tamper check
	-- (_table_state): column types, enum labels of the status values, the
	-- leaf partitions seen, and whether a rewrite changed values unseen
	state	jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (app, role)
);
COMMENT ON TABLE @extschema@.app_table IS
	'Tables mapped by each application; a table belongs to at most one application.';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.app', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.app_table', '');

REVOKE ALL ON @extschema@.app, @extschema@.app_table FROM PUBLIC;

