# Private SET signing keys never reach the server log (spec sections 3 and
# 12).  Keys are generated, used to sign and retired with every statement
# logged (log_statement = 'all', log_min_duration_statement = 0) and with
# auto_explain printing nested statements with EXPLAIN VERBOSE, which shows
# the constants of a plan: a private key folded into a plan as a constant
# would appear there.  Failing calls log their statements and contexts too.
# Then no piece of any private key, in hex or base64, may be in the log.  A
# control checks that the nested INSERT of a private key was logged at all,
# so the test can fail.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('logkeys',
	conf => "log_min_duration_statement = 0\nlog_min_error_statement = error\nlog_error_verbosity = verbose\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup()
	  . q{UPDATE "Crm App".users SET active = false WHERE id = 1;
		  UPDATE "Crm App".users SET login = 'bob@example.com' WHERE id = 2;});
my $offset = -s $node->logfile;

my $explain = q{
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_verbose = on;
};
$node->safe_psql('postgres', $explain . q{
SELECT connector.add_signing_key('crm');
SELECT connector.add_signing_key('crm', 'ES256');
SELECT connector.add_signing_key('crm', 'RS256');
SELECT count(*) FROM connector.changes('crm') c, connector._sets('crm', c.event, 'https://i', 'a');
SELECT connector._verification_set('crm', 's1', 'x', 'https://i', 'a');
SELECT connector.retire_signing_key('crm', (SELECT kid FROM connector.signing_keys ORDER BY created LIMIT 1));
});
# failures log their statement and context
for my $sql ("SELECT connector.add_signing_key('crm', 'HS256')",
	"SELECT connector.retire_signing_key('crm', 'nope')",
	"SELECT connector._sets('crm', '{\"id\": \"e\", \"type\": \"x.y\", \"timestamp\": \"2026-01-01T00:00:00Z\", \"data\": {\"app\": \"crm\"}}', 'i', 'a')")
{
	my ($rc) = $node->psql('postgres', $explain . $sql);
	isnt($rc, 0, "fails: $sql");
}
my $log = slurp_file($node->logfile, $offset);

like($log, qr/Query Text: INSERT INTO connector\.signing_key_secret/,
	'control: the nested INSERT of a private key is in the log');
like($log, qr/Output: \$1, \$2/, 'control: its plan is logged with its output columns');
like($log, qr/unsupported signing algorithm "HS256"/, 'control: errors are logged');

# every private key still stored, and the one retired (read before it went:
# its secret row is gone, so take the keys of all that are left, plus a
# sample of windows of each)
my @keys = split /\n/, $node->safe_psql('postgres',
	"SELECT encode(private_key, 'hex') FROM connector.signing_key_secret");
is(scalar(@keys), 2, 'two private keys are stored (one retired)');
my $probes = 0;
my $leaks = 0;
for my $hex (@keys)
{
	my $b64 = $node->safe_psql('postgres',
		"SELECT translate(encode(decode('$hex', 'hex'), 'base64'), E'\\n', '')");
	# skip the DER header, which is the same for every key of a kind
	for my $at (0.25, 0.5, 0.75)
	{
		for my $piece (substr($hex, int(length($hex) * $at), 40), substr($b64, int(length($b64) * $at), 32))
		{
			$probes++;
			$leaks++ if index($log, $piece) >= 0 || index(lc($log), lc($piece)) >= 0;
		}
	}
}
is($probes, 12, 'twelve pieces of private keys looked for');
is($leaks, 0, 'no piece of a private key is in the server log');

done_testing();
