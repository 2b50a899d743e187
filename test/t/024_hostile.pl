# Hostile input: every function of schema connector that connector_platform
# or connector_admin may execute is called, under each of those roles and
# under a role with neither, with one argument at a time replaced by a
# hostile value of its type (the others valid).  No call may crash the
# server, fail with an internal error (class XX) or a bare P0001, or change
# anything when it fails: after every failing call the application tables,
# the outbox (buffered events flushed), the idempotency records, endpoints
# and applications are as before.  Each call runs in a subtransaction, so a
# capture buffer that kept the events of a failed call would show up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('hostile');
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', q{
SELECT connector.add_endpoint('crm', 'hook', 'http://127.0.0.1:9/hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_admin IN ROLE connector_admin;
CREATE ROLE regress_neither;
CREATE TABLE public.x (a int);
CREATE FUNCTION public.hostile_state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws(' | ',
		(SELECT string_agg(u::text, ' ' ORDER BY id) FROM "Crm App".users u),
		(SELECT string_agg(r::text, ' ' ORDER BY r::text) FROM "Crm App".user_roles r),
		(SELECT string_agg(k::text, ' ' ORDER BY id) FROM "Crm App".api_keys k),
		(SELECT string_agg(r::text, ' ' ORDER BY id) FROM "Crm App".roles r),
		(SELECT coalesce(sum(n), 0) FROM connector.outbox),
		(SELECT count(*) FROM connector.request),
		-- (the dispatcher updates delivery columns of endpoints meanwhile)
		(SELECT string_agg(concat_ws(',', e.id, e.app, e.name, e.url, e.batch_size, e.types, e.ordered),
						   ' ' ORDER BY id) FROM connector.endpoint e),
		(SELECT string_agg(a.app || a.spec::text, ' ') FROM connector.app a),
		(SELECT count(*) FROM pg_class WHERE relname = 'x')))
$$;
CREATE TABLE public.hostile_result (role text, call text, sqlstate text, message text, changed boolean);
});

# hostile values by type, as SQL expressions
my $long = "repeat('x', 10240)";
my %hostile = (
	text => [ "''", $long, q{''''}, q{'"'}, q{E'\\\\'}, q{'é漢字🙂'}, q{''')); DROP TABLE x; --'},
		q{'%s%n'}, q{E'\\x01'}, q{' crm '}, 'NULL' ],
	jsonb => [ q{'null'}, q{'1'}, q{'"s"'}, q{'true'}, q{'[]'}, q{'{}'}, q{'[1, "a", null]'},
		q{'{"a": {"b": []}}'}, q{'[{"op": "grant"}]'}, q{'[{"op": "nope", "account": "1"}]'},
		q{'[{"op": "grant", "account": [], "entitlement": {}}]'},
		q{'{"accounts": 1, "grants": "x"}'}, "repeat('[', 200)::text || repeat(']', 200)", 'NULL' ],
	integer => [ '-1', '0', '2147483647', '-2147483648', 'NULL' ],
	bigint => [ '-1', '0', '9223372036854775807', '-9223372036854775808', 'NULL' ],
	'timestamp with time zone' => [ q{'infinity'}, q{'-infinity'}, q{'4713-01-01 BC'}, 'NULL' ],
	interval => [ q{'-1 day'}, q{'0'}, q{'178000000 years'}, 'NULL' ],
	# the string overloads (JDBC setString): JSON, timestamps, positions and
	# intervals as text, and text that is none of them
	'character varying' => [ q{'{}'}, q{'[]'}, q{'[{"op": "grant"}]'}, q{'{"accounts": 1}'}, "'{bad'",
		q{'infinity'}, q{'2001-01-01 00:00:00+00'}, q{'next week'}, q{'-1'}, q{'9223372036854775808'},
		q{'1 day'}, q{'-1 day'}, q{''}, $long, q{''')); DROP TABLE x; --'}, "repeat('[', 200)", 'NULL' ],
	boolean => [ 'NULL' ],
	bytea => [ q{''}, 'NULL' ],
);
# valid values by argument name
my %valid = (
	app => q{'crm'}, account => q{'1'}, entitlement => q{'7'}, name => q{'hook'},
	url => q{'http://127.0.0.1:9/other'}, secret => q{'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'},
	new_secret => q{'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'},
	attributes => q{'{}'}, operations => q{'[]'}, desired => q{'[]'}, options => q{'{}'},
	credential => q{'100'}, limit => '10', max_rows => '10', after => 'NULL', enforce => 'false',
	overlap => q{'1 day'}, from_position => '0', spec => 'NULL',
);

my @funcs = split /\n/, $node->safe_psql('postgres', q{
SELECT p.proname || '|' || array_to_string(coalesce(p.proargnames[1:p.pronargs], '{}'), ',') || '|'
	   || coalesce((SELECT string_agg(format_type(t, NULL), ',' ORDER BY o)
	                  FROM unnest(p.proargtypes) WITH ORDINALITY a(t, o)), '')
  FROM pg_proc p
 WHERE p.pronamespace = 'connector'::regnamespace
   AND (has_function_privilege('connector_platform', p.oid, 'EXECUTE')
		OR has_function_privilege('connector_admin', p.oid, 'EXECUTE'))
 ORDER BY 1});
note scalar(@funcs) . ' functions: ' . join(' ', map { (split /\|/)[0] } @funcs);
cmp_ok(scalar @funcs, '>=', 20, 'the sweep covers the API');

my @calls;
for my $f (@funcs)
{
	my ($fn, $names, $types) = split /\|/, $f, -1;
	my @names = split /,/, $names;
	my @types = split /,(?! )/, $types;
	for my $i (0 .. $#types)
	{
		for my $h (@{ $hostile{ $types[$i] } // ['NULL'] })
		{
			my @args = map {
				my $v = $_ == $i ? $h : ($valid{ $names[$_] // '' } // 'NULL');
				"($v)::$types[$_]"
			} 0 .. $#types;
			push @calls, "SELECT connector.$fn(" . join(', ', @args) . ')';
		}
	}
}
note scalar(@calls) . ' calls per role';

for my $role (qw(regress_platform regress_admin regress_neither))
{
	my $values = join(",\n", map { my $c = $_; $c =~ s/'/''/g; "('$c')" } @calls);
	$node->safe_psql('postgres', qq{
DO \$do\$
DECLARE
	c text;
	st text;
	msg text;
	before text;
	after text;
BEGIN
	FOR c IN SELECT v FROM (VALUES $values) x(v) LOOP
		before := public.hostile_state();
		st := NULL;
		msg := NULL;
		BEGIN
			EXECUTE 'SET LOCAL ROLE $role';
			EXECUTE 'SELECT count(*) FROM (' || c || ') x';
			RESET ROLE;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
		END;
		RESET ROLE;
		PERFORM connector._flush();
		after := public.hostile_state();
		INSERT INTO public.hostile_result VALUES ('$role', c, st, msg, before IS DISTINCT FROM after);
	END LOOP;
END
\$do\$});
}

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
my $summary = $node->safe_psql('postgres', q{
SELECT role || ': ' || count(*) || ' calls, ' || count(sqlstate) || ' errors, SQLSTATEs '
	   || string_agg(DISTINCT sqlstate, ' ')
  FROM public.hostile_result GROUP BY role ORDER BY role});
note $summary;
my $internal = $node->safe_psql('postgres', q{
SELECT role || ' ' || sqlstate || ' ' || left(message, 120) || ' <= ' || left(call, 200)
  FROM public.hostile_result WHERE sqlstate LIKE 'XX%' OR sqlstate = 'P0001' OR sqlstate LIKE '58%'
 ORDER BY 1 LIMIT 20});
is($internal, '', 'no internal error (XX000) and no bare P0001');
my $changed = $node->safe_psql('postgres', q{
SELECT role || ' ' || sqlstate || ' ' || left(call, 200)
  FROM public.hostile_result WHERE sqlstate IS NOT NULL AND changed ORDER BY 1 LIMIT 20});
is($changed, '', 'no failing call changed anything');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM public.hostile_result n
 WHERE n.role = 'regress_neither' AND n.sqlstate IS DISTINCT FROM '42501'
   -- a hostile argument that fails its own cast (a regclass that names no
   -- table) fails before any function runs, for every role alike
   AND NOT EXISTS (SELECT 1 FROM public.hostile_result p
					WHERE p.role = 'regress_platform' AND p.call = n.call
					  AND p.sqlstate = n.sqlstate AND p.sqlstate NOT LIKE '42501')}), '0',
	'a role with neither grant is refused every call (42501)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'x'}), '1',
	'no injected statement ran');

$node->stop('fast');
done_testing();
