# SCIM bearer tokens never reach the server log (spec section 11: the token
# is never echoed).  The gateway sends one to scim_session in every
# request's transaction, usually as a bind parameter: a failing call (a
# wrong, revoked or other application's token, a role without EXECUTE, a
# syntax error) and a successful one with every statement logged, through
# the simple and the extended protocol, must leave the error in the log but
# no part of the token.  A control statement shows that statements are
# logged at all, so the tests can fail.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('logtokens',
	conf => "log_min_error_statement = error\nlog_parameter_max_length_on_error = -1\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', q{
CREATE ROLE regress_outsider LOGIN;
CREATE ROLE regress_platform LOGIN IN ROLE connector_platform;
});
my $tok = $node->safe_psql('postgres', "SELECT connector.add_token('crm', 'gw')");
like($tok, qr/^ctk_[A-Za-z0-9_-]{43}$/, 'a token');
my $revoked = $node->safe_psql('postgres', "SELECT connector.add_token('crm', 'old')");
$node->safe_psql('postgres', "SELECT connector.revoke_token('crm', 'old')");

sub log_since
{
	my ($offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# The parts of a token that must not be in a log.
sub absent
{
	my ($name, $log, @tokens) = @_;
	for my $t (@tokens)
	{
		my $part = $t =~ s/^ctk_//r;
		unlike($log, qr/\Q$part\E/, "$name: the token is not in the server log");
		unlike($log, qr/\Q${\ substr($part, 8, 16)}\E/, "$name: nor a piece of it");
	}
}

sub fails_quietly
{
	my ($name, $sql, $error, $tokens, %opt) = @_;
	my $offset = -s $node->logfile;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, extra_params => $opt{params} // []);
	isnt($rc, 0, "$name: fails");
	like($err, $error, "$name: the client gets the error");
	my $log = log_since($offset);
	like($log, $error, "$name: the error is in the server log");
	absent($name, $log, @$tokens);
	unlike($log, qr/STATEMENT:/, "$name: no STATEMENT line") unless $opt{statement_ok};
}

{
	my $offset = -s $node->logfile;
	$node->psql('postgres', "SELECT 'LeakCanaryControl'::int");
	like(log_since($offset), qr/STATEMENT:  SELECT 'LeakCanaryControl'::int/,
		'control: an unrelated failing statement is logged whole');
}

my $wrong = 'ctk_' . ('LeakCanaryWrongToken' x 2) . 'abc';
fails_quietly('a wrong token', "SELECT connector.scim_session('crm', '$wrong')",
	qr/invalid bearer token/, [$wrong]);
fails_quietly('a revoked token', "SELECT connector.scim_session('crm', '$revoked')",
	qr/invalid bearer token/, [$revoked]);
fails_quietly('a role without EXECUTE', "SELECT connector.scim_session('crm', '$tok')",
	qr/permission denied for (function scim_session|schema connector)/, [$tok],
	params => [ '-U', 'regress_outsider' ]);
fails_quietly('a token pasted elsewhere', "SELECT '$tok'::int",
	qr/invalid input syntax for type integer: "ctk_\*\*\*"/, [$tok], statement_ok => 1);
fails_quietly('a syntax error', "SELECT connector.scim_session('crm', '$tok' 'x')",
	qr/syntax error/, [$tok]);

# Extended protocol: the gateway binds the token as a parameter.
{
	my $offset = -s $node->logfile;
	$node->pgbench("-n -M extended -t 1 -D tok=$wrong", 2,
		[], [qr/invalid bearer token/], 'extended protocol: fails',
		{ '031_ext_fail' => "SELECT connector.scim_session('crm', :tok);\n" });
	my $log = log_since($offset);
	like($log, qr/invalid bearer token/, 'extended protocol: the error is logged');
	absent('extended protocol, failing', $log, $wrong);
	unlike($log, qr/STATEMENT:/, 'extended protocol: no STATEMENT line');
}

# Successful calls (PostgreSQL::Test::Cluster logs every statement).
{
	my $offset = -s $node->logfile;
	is($node->safe_psql('postgres', "SELECT connector.scim_session('crm', '$tok')", extra_params => [ '-U', 'regress_platform' ]),
		'gw', 'the platform opens a session');
	$node->pgbench("-n -M extended -t 1 -U regress_platform -D tok=$tok", 0, [], [], 'extended protocol: succeeds',
		{ '031_ext_ok' => "SELECT connector.scim_session('crm', :tok);\n" });
	my $log = log_since($offset);
	like($log, qr/statement: SELECT connector\.scim_session\('\*\*\*', '\*\*\*'\)/,
		'log_statement: the call is logged with its literals hidden');
	like($log, qr/DETAIL:  parameters: \$1 = '\*\*\*'/, 'extended protocol: its parameters are hidden');
	absent('success paths', $log, $tok);
}

done_testing();
