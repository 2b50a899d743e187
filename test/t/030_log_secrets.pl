# Webhook secrets never reach the server log (spec section 3).  Every way a
# call of add_endpoint or rotate_secret can fail is run with a distinctive
# secret, and the server log must hold the error but not the secret: a failure
# before the function body runs (malformed options JSON, a bad overlap
# interval, no privilege, a syntax error), one in the body (bad secret, bad
# URL), through a DO block and through the extended protocol with parameter
# logging on.  PostgreSQL::Test::Cluster runs with log_statement = 'all', so
# every case also checks the "statement:" line; successful calls with
# log_statement = 'all', with log_min_duration_statement = 0 and under
# auto_explain log the statement with its literals replaced.  A control statement shows that statements are logged at all,
# so the tests can fail.  Last, a NULL secret is generated, returned once and
# signs real deliveries.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MIME::Base64 qw(encode_base64 decode_base64);
use lib 'test/t';
use ConnectorTest;

# A valid secret whose base64 part is easy to find: 32 bytes naming the case.
sub canary
{
	my ($case) = @_;
	my $bytes = substr("leak-canary-$case-" . ('x' x 32), 0, 32);
	return 'whsec_' . encode_base64($bytes, '');
}

my $node = ConnectorTest::node('logsecrets',
	conf => "log_min_error_statement = error\nlog_parameter_max_length_on_error = -1\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', q{
CREATE ROLE regress_outsider LOGIN;
CREATE ROLE regress_platform LOGIN IN ROLE connector_platform;
});
$node->safe_psql('postgres',
	"SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/x', '" . canary('setup') . "')");

# The server log written since offset.
sub log_since
{
	my ($offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# Run sql (it must fail with an error matching $error), then check the log:
# the error is there, no part of any secret in @secrets is.
sub fails_quietly
{
	my ($name, $sql, $error, $secrets, %opt) = @_;
	my $offset = -s $node->logfile;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, extra_params => $opt{params} // []);
	isnt($rc, 0, "$name: fails");
	like($err, $error, "$name: the client gets the error");
	my $log = log_since($offset);
	like($log, $error, "$name: the error is in the server log");
	for my $s (@$secrets)
	{
		my $part = $s =~ s/^whsec_//r;
		unlike($log, qr/\Q$part\E/, "$name: the secret is not in the server log");
		unlike($log, qr/\Q${\ substr($part, 4, 16)}\E/, "$name: nor a piece of it");
	}
	unlike($log, qr/STATEMENT:/, "$name: no STATEMENT line") unless $opt{statement_ok};
	return $log;
}

# Control: a failing statement that has nothing to do with secrets is logged
# with its STATEMENT line, so the absence of one below means something.
{
	my $offset = -s $node->logfile;
	$node->psql('postgres', "SELECT 'LeakCanaryControl'::int");
	like(log_since($offset), qr/STATEMENT:  SELECT 'LeakCanaryControl'::int/,
		'control: an unrelated failing statement is logged whole');
}

# Failures before the body runs.
my $s = canary('json');
fails_quietly('malformed options JSON',
	"SELECT connector.add_endpoint('crm', 'j', 'https://hooks.example.com/x', '$s', '{\"batch_size\": 10,'::jsonb)",
	qr/invalid input syntax for type json/, [$s]);
$s = canary('overlap');
fails_quietly('bad overlap interval',
	"SELECT connector.rotate_secret('crm', 'hook', '$s', 'one day or so')",
	qr/invalid input syntax for type interval: "one day or so"/, [$s]);
$s = canary('outsider');
fails_quietly('role without USAGE on the schema',
	"SELECT connector.add_endpoint('crm', 'o', 'https://hooks.example.com/x', '$s')",
	qr/permission denied for schema connector/, [$s], params => [ '-U', 'regress_outsider' ]);
$s = canary('platform');
fails_quietly('role without EXECUTE',
	"SELECT connector.rotate_secret('crm', 'hook', '$s', '1 hour')",
	qr/permission denied for function rotate_secret/, [$s], params => [ '-U', 'regress_platform' ]);
fails_quietly('no function of that signature',
	"SELECT connector.add_endpoint('crm', 'o', 'https://hooks.example.com/x', '$s', 42)",
	qr/function connector\.add_endpoint\(unknown, unknown, unknown, unknown, integer\) does not exist/, [$s]);

# The names are found however they are written.
$s = canary('quoted');
fails_quietly('quoted, schema-qualified name',
	"SELECT \"connector\".\"add_endpoint\"('crm', 'q', 'https://hooks.example.com/x', '$s', '{bad')",
	qr/endpoint options is not a valid jsonb/, [$s]);
$s = canary('upper');
fails_quietly('upper case name',
	"SELECT CONNECTOR.ROTATE_SECRET('crm', 'hook', '$s', 'soonish')",
	qr/invalid input syntax for type interval/, [$s]);
$s = canary('unqualified');
fails_quietly('unqualified name after SET search_path',
	"SET search_path = connector, public; SELECT add_endpoint('crm', 'u', 'https://hooks.example.com/x', '$s', '[1,')",
	qr/endpoint options is not a valid jsonb/, [$s]);

# Failures in the body.
fails_quietly('bad secret format',
	"SELECT connector.add_endpoint('crm', 'b', 'https://hooks.example.com/x', 'LeakCanaryNotAWebhookSecret42')",
	qr/secret must start with "whsec_"/, ['LeakCanaryNotAWebhookSecret42']);
$s = canary('short');
$s = substr($s, 0, 30);		# valid base64, too few bytes
fails_quietly('secret too short',
	"SELECT connector.rotate_secret('crm', 'hook', '$s')",
	qr/new secret must decode to 24 to 64 bytes/, [$s]);
$s = canary('url');
fails_quietly('bad URL',
	"SELECT connector.add_endpoint('crm', 'f', 'ftp://hooks.example.com/x', '$s')",
	qr/endpoint URL scheme "ftp" is not allowed/, [$s]);
fails_quietly('unknown endpoint',
	"SELECT connector.rotate_secret('crm', 'nohook', '$s')",
	qr/endpoint "nohook" of application "crm" does not exist/, [$s]);

# A secret in the wrong place shows up in an error message: it is cut down.
$s = canary('swapped');
fails_quietly('secret given as the overlap',
	"SELECT connector.rotate_secret('crm', 'hook', 'one day', '$s')",
	qr/invalid input syntax for type interval: "whsec_\*\*\*"/, [$s]);

# A syntax error quotes the literal it stopped at, or the rest of the input.
fails_quietly('unterminated literal',
	"SELECT connector.add_endpoint('crm', 's', 'https://hooks.example.com/x', 'LeakCanaryUnterminated)",
	qr/unterminated quoted string at or near "'\*\*\*"/, ['LeakCanaryUnterminated']);
fails_quietly('literal where a comma belongs',
	"SELECT connector.add_endpoint('crm', 's', 'https://hooks.example.com/x' 'LeakCanaryAdjacent')",
	qr/syntax error at or near "'\*\*\*'"/, ['LeakCanaryAdjacent']);

# In a DO block the context quotes the inner statement: its literals go.
fails_quietly('inside a DO block',
	q{DO $$ BEGIN PERFORM connector.add_endpoint('crm', 'd', 'https://hooks.example.com/x', 'LeakCanaryInDoBlock'); END $$},
	qr/secret must start with "whsec_"/, ['LeakCanaryInDoBlock']);

# Extended protocol (pgbench -M extended sends :variables as parameters);
# log_parameter_max_length_on_error puts their values in the error context.
{
	my $offset = -s $node->logfile;
	$node->pgbench('-n -M extended -t 1 -D url=ftp://hooks.example.com/x -D secret=LeakCanaryExtended', 2,
		[], [qr/endpoint URL scheme "ftp" is not allowed/], 'extended protocol: fails',
		{ '030_ext_fail' => "SELECT connector.add_endpoint('crm', 'x', :url, :secret);\n" });
	my $log = log_since($offset);
	like($log, qr/with parameters: \$1 = '\*\*\*', \$2 = '\*\*\*'/,
		'extended protocol: the parameters in the context are hidden');
	unlike($log, qr/LeakCanaryExtended/, 'extended protocol: the secret is not in the server log');
	unlike($log, qr/STATEMENT:/, 'extended protocol: no STATEMENT line');
}

# Successful calls with every statement logged.
{
	local $ENV{PGOPTIONS} = '-c log_statement=all -c log_min_duration_statement=0';
	my $offset = -s $node->logfile;
	my ($s1, $s2, $s3, $s4) = map { canary("ok$_") } 1 .. 4;
	$node->safe_psql('postgres',
		"SELECT connector.add_endpoint('crm', 'ok1', 'https://hooks.example.com/x', '$s1')");
	# every kind of literal, and a comment
	$node->safe_psql('postgres',
		"SELECT connector.rotate_secret(E'crm', \$\$ok1\$\$, \$q\$$s2\$q\$, '0') /* $s3 */ -- LeakCanaryComment");
	$node->safe_psql('postgres',
		"PREPARE p(text) AS SELECT connector.rotate_secret('crm', 'ok1', \$1, '0'); EXECUTE p('$s4')");
	my $log = log_since($offset);
	like($log, qr/LOG:  statement: SELECT connector\.add_endpoint\('\*\*\*', '\*\*\*', '\*\*\*', '\*\*\*'\)/,
		'log_statement: the call is logged with its literals hidden');
	like($log,
		qr{statement: SELECT connector\.rotate_secret\(E'\*\*\*', \$\$\*\*\*\$\$, \$q\$\*\*\*\$q\$, '\*\*\*'\) /\* \*\*\* \*/ -- \*\*\*},
		'E strings, dollar quotes and comments are hidden too');
	like($log, qr/statement: PREPARE p\(text\) AS SELECT connector\.rotate_secret\('\*\*\*', '\*\*\*', \$1, '\*\*\*'\);/,
		'PREPARE is hidden');
	like($log, qr/statement: EXECUTE p\('\*\*\*'\)/, 'EXECUTE is hidden');
	for my $sec ($s1, $s2, $s3, $s4, 'LeakCanaryComment')
	{
		my $part = $sec =~ s/^whsec_//r;
		unlike($log, qr/\Q$part\E/, "success paths: $part is not in the server log");
	}

	$offset = -s $node->logfile;
	my $s5 = canary('ok5');
	$node->pgbench("-n -M extended -t 1 -D secret=$s5", 0, [], [], 'extended protocol: succeeds',
		{ '030_ext_ok' => "SELECT connector.rotate_secret('crm', 'ok1', :secret, '0');\n" });
	$log = log_since($offset);
	like($log, qr/execute <unnamed>: SELECT connector\.rotate_secret\('\*\*\*', '\*\*\*', \$1, '\*\*\*'\)/,
		'extended protocol: the statement is logged');
	like($log, qr/DETAIL:  parameters: \$1 = '\*\*\*'/, 'extended protocol: its parameters are hidden');
	my $part = $s5 =~ s/^whsec_//r;
	unlike($log, qr/\Q$part\E/, 'extended protocol: the secret is not in the server log');
}

# log_min_duration_statement alone writes the statement with the duration.
{
	local $ENV{PGOPTIONS} = '-c log_statement=none -c log_min_duration_statement=0';
	my $offset = -s $node->logfile;
	my $s6 = canary('ok6');
	$node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'ok1', '$s6', '0')");
	my $log = log_since($offset);
	like($log, qr/LOG:  duration: [0-9.]+ ms  statement: SELECT connector\.rotate_secret\('\*\*\*', '\*\*\*', '\*\*\*', '\*\*\*'\)/,
		'log_min_duration_statement: the call is logged with its literals hidden');
	my $part = $s6 =~ s/^whsec_//r;
	unlike($log, qr/\Q$part\E/, 'log_min_duration_statement: the secret is not in the server log');
}

# auto_explain quotes the statement in its plan message.
{
	local $ENV{PGOPTIONS} = '-c log_statement=none -c session_preload_libraries=auto_explain'
	  . ' -c auto_explain.log_min_duration=0';
	my $offset = -s $node->logfile;
	my $s7 = canary('ok7');
	$node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'ok1', '$s7', '0')");
	my $log = log_since($offset);
	like($log, qr/Query Text: SELECT connector\.rotate_secret\('\*\*\*', '\*\*\*', '\*\*\*', '\*\*\*'\)/,
		'auto_explain: the query text has its literals hidden');
	my $part = $s7 =~ s/^whsec_//r;
	unlike($log, qr/\Q$part\E/, 'auto_explain: the secret is not in the server log');
}

# Unrelated statements are left alone: literals in their log lines stay.
{
	local $ENV{PGOPTIONS} = '-c log_statement=all';
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT 'visible literal'");
	like(log_since($offset), qr/statement: SELECT 'visible literal'/, 'other statements are logged as they are');
}

# A NULL secret: generated (32 random bytes), returned once, and it signs.
{
	my $rx0 = ConnectorTest::Receiver->start(secret => canary('placeholder'));
	my $port = $rx0->{port};
	my $url = $rx0->url;
	$rx0->stop;
	my $gen = $node->safe_psql('postgres',
		"SELECT connector.add_endpoint('crm', 'gen', '$url', NULL)");
	like($gen, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'add_endpoint with a NULL secret returns a whsec_ secret');
	is(length(decode_base64($gen =~ s/^whsec_//r)), 32, 'of 32 bytes');
	is($node->safe_psql('postgres',
		"SELECT connector.add_endpoint('crm', 'given', 'https://hooks.example.com/x', '" . canary('given') . "') IS NULL"),
		't', 'a given secret is not returned');
	my $rot = $node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'hook', NULL)");
	like($rot, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'rotate_secret with a NULL secret returns a whsec_ secret');
	isnt($rot, $gen, 'each generated secret is new');
	is($node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'hook', '" . canary('r') . "') IS NULL"),
		't', 'a given new secret is not returned');

	# only the endpoint under test receives
	$node->safe_psql('postgres', "SELECT connector.remove_endpoint('crm', e) FROM unnest(ARRAY['hook', 'ok1', 'given']) e");
	my $rx = ConnectorTest::Receiver->start(secret => $gen, port => $port);
	ConnectorTest::deliv_grants($node, 1);
	my @ok = $rx->wait_for(1, 30);
	is(scalar(@ok), 1, 'a message signed with the generated secret is verified by the receiver');

	# rotate to a generated secret with no overlap: only it signs from now on
	my $gen2 = $node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'gen', NULL, '0')");
	$rx->stop;
	$rx = ConnectorTest::Receiver->start(secret => $gen2, port => $port);
	ConnectorTest::deliv_grants($node, 1);
	@ok = $rx->wait_for(1, 30);
	is(scalar(@ok), 1, 'after rotate_secret(NULL) the new generated secret signs');
	is(scalar(grep { !$_->{verified} } $rx->entries), 0, 'and nothing arrived unsigned by it');
	$rx->stop;
}

$node->stop;

# Without the library in shared_preload_libraries a backend installs the
# filter only when it loads the library: session_preload_libraries does, and
# a session that has not loaded it logs the statement of a call that fails
# before the body runs (docs/security.md says so).
my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->append_conf('postgresql.conf', "log_min_error_statement = error\n");
$bare->start;
$bare->safe_psql('postgres', ConnectorTest::crm_setup() =~ s/^/CREATE EXTENSION connector;\n/r);
{
	my $offset = -s $bare->logfile;
	$bare->psql('postgres',
		"SELECT connector.add_endpoint('crm', 'j', 'https://hooks.example.com/x', 'LeakCanaryNotLoaded', '{bad'::jsonb)");
	like(slurp_file($bare->logfile, $offset), qr/STATEMENT:  .*LeakCanaryNotLoaded/,
		'not preloaded, library not loaded: the statement is logged (documented limit)');

	local $ENV{PGOPTIONS} = '-c session_preload_libraries=connector';
	$offset = -s $bare->logfile;
	$bare->psql('postgres',
		"SELECT connector.add_endpoint('crm', 'j', 'https://hooks.example.com/x', 'LeakCanarySessionPreload', '{bad'::jsonb)");
	my $log = slurp_file($bare->logfile, $offset);
	like($log, qr/invalid input syntax for type json/, 'session_preload_libraries: the error is logged');
	unlike($log, qr/LeakCanarySessionPreload/, 'session_preload_libraries: the statement is not');
}
$bare->stop;

done_testing();
