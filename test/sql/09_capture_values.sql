-- Whatever a mapped column holds, its event reads back as jsonb: json text
-- with \u0000, unpaired surrogates, numbers numeric cannot hold, deep
-- nesting; floats and numerics that are not finite.  One such value once
-- made changes() fail for every reader from then on (22P05).
BEGIN;
CREATE EXTENSION connector;
SELECT plan(22);

CREATE SCHEMA v;
CREATE TABLE v.users (
	id		int PRIMARY KEY,
	login	text NOT NULL,
	profile	json,
	doc		jsonb,
	score	float8,
	ratio	real,
	amount	numeric
);
INSERT INTO v.users (id, login) VALUES (1, 'ann');
SELECT connector.register_app('vals', '{
	"accounts": {"table": "v.users", "id": "id", "name": "login",
				 "attributes": ["profile", "doc", "score", "ratio", "amount"]}}');

-- The mapped values of the latest event of the application.
CREATE FUNCTION pg_temp.after() RETURNS jsonb LANGUAGE sql AS $$
	SELECT event #> '{data,after}' FROM connector.changes('vals', 0, 100000)
	 ORDER BY position DESC LIMIT 1
$$;

-- \u0000 through the write API (a JSON string that the column parses as json)
SELECT lives_ok($$SELECT connector.update_account('vals', '1', '{"profile": "{\"x\": \"a\\u0000b\"}"}')$$,
				'update_account stores json holding \u0000');
SELECT lives_ok($$SELECT count(*) FROM connector.changes('vals')$$, 'changes() reads the stream after it');
SELECT is(pg_temp.after()->'profile', '{"x": "a\ufffdb"}'::jsonb, '\u0000 becomes U+FFFD');

-- and through direct DML, in keys and values, next to escapes that stay
UPDATE v.users SET profile = '{"\u0000": ["\u0000", "a\ud800b", "\udc00", "\ud800\u0041", "\ud83d\ude00", "q\\u0000\"\\", "\u00e9\n"]}';
SELECT lives_ok($$SELECT count(*) FROM connector.changes('vals')$$, 'changes() reads unpaired surrogates');
SELECT is(pg_temp.after()->'profile',
		  '{"\ufffd": ["\ufffd", "a\ufffdb", "\ufffd", "\ufffdA", "\ud83d\ude00", "q\\u0000\"\\", "\u00e9\n"]}'::jsonb,
		  'unpaired surrogates become U+FFFD; a pair, an escaped backslash and other escapes stay');

-- numbers of json text that numeric (so jsonb) cannot hold become strings
UPDATE v.users SET profile = '[1e131071, 1e131072, 10e131071, 0.1e131072, 1e-16383, 1e-16384, 1.50e-16382, 0e-16384, -2.5E+3, 12345678901234567890.5, {"n": 1e99999999999999999999}]';
SELECT lives_ok($$SELECT count(*) FROM connector.changes('vals')$$, 'changes() reads huge exponents');
SELECT is((SELECT array_agg(jsonb_typeof(x) ORDER BY i) FROM jsonb_array_elements(pg_temp.after()->'profile') WITH ORDINALITY e(x, i)),
		  ARRAY['number', 'string', 'string', 'number', 'number', 'string', 'string', 'string', 'number', 'number', 'object'],
		  'a number keeps its type exactly where numeric can hold it');
SELECT is((SELECT array_agg(x ORDER BY i) FROM jsonb_array_elements_text(pg_temp.after()->'profile') WITH ORDINALITY e(x, i)
			WHERE jsonb_typeof(pg_temp.after()->'profile'->(i::int - 1)) = 'string'),
		  ARRAY['1e131072', '10e131071', '1e-16384', '1.50e-16382', '0e-16384'],
		  'the others are strings of the number as written');
SELECT is(pg_temp.after()->'profile'->10, '{"n": "1e99999999999999999999"}'::jsonb, 'also inside an object');
SELECT is(pg_temp.after()->'profile'->>8, '-2500', 'ordinary numbers are numbers');

-- nesting: up to 1000 levels stay JSON, deeper values are kept as a string
UPDATE v.users SET profile = (repeat('[', 1000) || '"\u0000"' || repeat(']', 1000))::json;
SELECT is(jsonb_typeof(pg_temp.after()->'profile'), 'array', '1000 levels of json stay JSON');
SELECT is(pg_temp.after()->'profile' #>> (SELECT array_agg('0'::text) FROM generate_series(1, 1000)), E'\ufffd',
		  'and are repaired inside');
UPDATE v.users SET profile = (repeat('[', 1001) || '"\u0000"' || repeat(']', 1001))::json;
SELECT is(pg_temp.after()->>'profile', repeat('[', 1001) || '"\u0000"' || repeat(']', 1001),
		  'deeper json is a string holding its exact text');
UPDATE v.users SET profile = NULL, doc = (repeat('{"a":', 1001) || '1' || repeat('}', 1001))::jsonb;
SELECT is(pg_temp.after()->>'doc', repeat('{"a": ', 1001) || '1' || repeat('}', 1001),
		  'so is deeper jsonb');
UPDATE v.users SET doc = '{"a": [1, "\u00e9", {"b": null}]}';
SELECT is(pg_temp.after()->'doc', '{"a": [1, "\u00e9", {"b": null}]}'::jsonb, 'ordinary jsonb is itself');

-- floats and numerics that are not finite are strings, finite ones numbers
UPDATE v.users SET doc = NULL, score = 'NaN', ratio = '-Infinity', amount = 'Infinity';
SELECT is(pg_temp.after() - '{id,login,profile,doc}'::text[], '{"score": "NaN", "ratio": "-Infinity", "amount": "Infinity"}'::jsonb,
		  'NaN and infinities are strings');
UPDATE v.users SET score = '1e308', ratio = '-1.5e-38', amount = 'NaN';
SELECT is(pg_temp.after() - '{id,login,profile,doc}'::text[], '{"score": 1e308, "ratio": -1.5e-38, "amount": "NaN"}'::jsonb,
		  'finite floats are numbers, numeric NaN a string');
UPDATE v.users SET amount = ('1' || repeat('0', 1000) || '.' || repeat('5', 1000))::numeric;
SELECT is(pg_temp.after()->>'amount', '1' || repeat('0', 1000) || '.' || repeat('5', 1000), 'a long numeric is a number');
SELECT is(jsonb_typeof(pg_temp.after()->'amount'), 'number', 'of JSON type number');

-- every event of the stream and every outbox row reads back
SELECT is((SELECT count(*) FROM connector.changes('vals', 0, 100000)), 10::bigint, 'changes() returns every event');
SELECT lives_ok($$SELECT sum(jsonb_array_length(events::jsonb)) FROM connector.outbox$$, 'every outbox row is jsonb');

\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'the C reader renders every event and body as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
