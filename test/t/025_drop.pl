# DROP EXTENSION and DROP DATABASE while the dispatcher is delivering to a
# slow receiver: both succeed promptly, no worker stays behind, and the log
# holds no error but the expected terminations.  ALTER EXTENSION ... UPDATE:
# 0.1 is the only version; the update path is asserted empty and the
# update a no-op success (upgrade scripts get tested from 0.1 onward).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $rx = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.5' ]);
my $node = ConnectorTest::node('drop');

# Set up the crm application in a database and start delivering to the
# slow receiver; returns once the first request has arrived.
sub delivering
{
	my ($db, $seen) = @_;
	$node->safe_psql($db, 'CREATE EXTENSION IF NOT EXISTS connector');
	$node->safe_psql($db, ConnectorTest::crm_setup());
	$node->safe_psql($db, qq{SELECT connector.add_endpoint('crm', 'hook', '${\ $rx->url}', '$secret')});
	$node->safe_psql($db, q{INSERT INTO "Crm App".user_roles SELECT 1, 2, NULL FROM generate_series(1, 100)});
	$rx->wait_requests($seen + 1, 30);
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher' AND datname = '$db'"),
		"the dispatcher of $db is delivering");
}

# the log since an offset, without the expected lines
sub log_errors
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	return grep {
		/\b(ERROR|FATAL|PANIC|WARNING):/
		  && !/terminating background worker "connector dispatcher" due to administrator command/
		  && !/terminating connection due to administrator command/
	} split /\n/, $log;
}

# DROP EXTENSION while delivering
delivering('postgres', 0);
my $offset = -s $node->logfile;
my $t0 = time;
$node->safe_psql('postgres', 'DROP EXTENSION connector');
my $took = time - $t0;
cmp_ok($took, '<', 5, sprintf('DROP EXTENSION succeeds promptly while delivering (%.2f s)', $took));
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"),
	'no dispatcher is left behind');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'connector%'}), '0',
	'the capture triggers went with the extension');
$node->safe_psql('postgres', q{INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL)});
pass('the application writes on without the extension');
my @errors = log_errors($offset);
is_deeply(\@errors, [], 'no error in the server log');
$node->safe_psql('postgres', 'DROP SCHEMA "Crm App" CASCADE');

# DROP DATABASE while delivering
$node->safe_psql('postgres', 'CREATE DATABASE other');
my $seen = scalar(my @e = $rx->entries);
delivering('other', $seen);
$offset = -s $node->logfile;
$t0 = time;
$node->safe_psql('postgres', 'DROP DATABASE other');
$took = time - $t0;
cmp_ok($took, '<', 5, sprintf('DROP DATABASE succeeds promptly while delivering (%.2f s)', $took));
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"),
	'no dispatcher is left behind');
sleep 2;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"), '0',
	'and none is started again for the dropped database');
@errors = log_errors($offset);
is_deeply(\@errors, [], 'no error in the server log');

# the update path: only 0.1 exists
$node->safe_psql('postgres', 'CREATE EXTENSION connector');
is($node->safe_psql('postgres', q{SELECT string_agg(version, ',') FROM pg_available_extension_versions WHERE name = 'connector'}),
	'0.1', 'the only available version is 0.1');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension_update_paths('connector')}), '0',
	'there is no update path yet');
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER EXTENSION connector UPDATE');
is($ret, 0, 'ALTER EXTENSION connector UPDATE succeeds');
like($err, qr/version "0.1" of extension "connector" is already installed/, 'as a no-op');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'connector'}), '0.1',
	'the installed version stays 0.1');

$node->stop('fast');
$rx->stop;
done_testing();
