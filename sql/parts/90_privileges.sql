-- Privileges: nothing for PUBLIC; the API for the two roles.  Runs last so it
-- covers every function defined above.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	@extschema@.register_app(text, jsonb),
	@extschema@.unregister_app(text),
	@extschema@.accounts(text, text, int),
	@extschema@.entitlements(text, text, int),
	@extschema@.credentials(text, text, int)
TO connector_admin;

GRANT EXECUTE ON FUNCTION
	@extschema@.accounts(text, text, int),
	@extschema@.entitlements(text, text, int),
	@extschema@.credentials(text, text, int)
TO connector_platform;

GRANT SELECT ON @extschema@.apps TO connector_admin;

-- A table owner creating a partition of a mapped table clones the capture
-- trigger onto it, which needs EXECUTE on the trigger function.  capture()
-- captures only the tables register_app mapped (and their partitions), so
-- the privilege lets no one write events for another table.
GRANT EXECUTE ON FUNCTION @extschema@.capture() TO PUBLIC;
