-- SCIM's userName lookup (a name eq filter, compared case-insensitively) is
-- served by an index on lower(name) on a table of 20,000 accounts: the plans
-- of the very statements scim_accounts runs (its count and its page).
BEGIN;
CREATE EXTENSION connector;
SELECT plan(9);

CREATE SCHEMA big;
CREATE TABLE big.users (id int PRIMARY KEY, login varchar(64) NOT NULL, mail text);
INSERT INTO big.users SELECT i, 'User' || i, 'u' || i || '@example.com' FROM generate_series(1, 20000) i;
SELECT connector.register_app('big', '{"accounts": {"table": "big.users", "id": "id", "name": "login",
	"attributes": ["mail"]}, "scim": {"attributes": {"emails[type eq \"work\"].value": "mail"}}}');
ANALYZE big.users;

-- The plan of scim_accounts' count and page statements for a filter.
CREATE FUNCTION pg_temp.plans(f jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	m jsonb := connector._write_mapping('big');
	c record;
	q record;
	line text;
	r text := '';
BEGIN
	c := connector._filter_compile(m, 'accounts', f);
	q := connector._scim_sql(m, 'accounts', 't.id::text', c.cond, false);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q.count_sql USING c.vals LOOP
		r := r || line || E'\n';
	END LOOP;
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q.page_sql
		USING c.vals, NULL::bigint, NULL::text, 0::bigint, 100 LOOP
		r := r || line || E'\n';
	END LOOP;
	RETURN r;
END
$$;

SELECT matches(pg_temp.plans('{"attr": "name", "op": "eq", "value": "USER12345", "ci": true}'),
			   'Seq Scan on users', 'without an index on lower(login) the table is read whole');
SELECT ok(NOT connector._scim_name_indexed('big.users'::regclass, 'login'),
		  'register_app noticed there was none (and said so)');
CREATE INDEX users_lower_login ON big.users (lower(login));
ANALYZE big.users;
SELECT ok(connector._scim_name_indexed('big.users'::regclass, 'login'), 'now there is one');
SELECT doesnt_match(pg_temp.plans('{"attr": "name", "op": "eq", "value": "USER12345", "ci": true}'),
					'Seq Scan', 'the userName lookup reads no table whole');
SELECT is((SELECT count(*)::int FROM regexp_matches(
			pg_temp.plans('{"attr": "name", "op": "eq", "value": "USER12345", "ci": true}'),
			'Index Scan using users_lower_login|Bitmap Index Scan on users_lower_login', 'g')), 2,
		  'both the count and the page use the lower(login) index');
SELECT matches(pg_temp.plans('{"and": [{"attr": "name", "op": "eq", "value": "user7", "ci": true},
									  {"attr": "col:mail", "op": "pr"}]}'),
			   'users_lower_login', 'also inside an and');
SELECT is((SELECT row(total, id, name, attributes)::text FROM connector.scim_accounts('big',
			'{"attr": "name", "op": "eq", "value": "USER12345", "ci": true}')),
		  row(1::bigint, '12345', 'User12345', '{"mail": "u12345@example.com"}'::jsonb)::text,
		  'and finds the account');
SELECT is((SELECT array_agg(id) FROM connector.scim_accounts('big', after => '19998', count_total => false)),
		  ARRAY['19999', '20000'], 'the last page by cursor');
SELECT matches((connector._scim_sql(connector._write_mapping('big'), 'accounts', 't.id::text', 'true', true)).page_sql,
			   'WHERE \(true\) AND t.id > \$3::integer ORDER BY t.id', 'a cursor page is a keyset range on the id');

SELECT * FROM finish();
ROLLBACK;
