# Just-in-time access: the dispatcher revokes a time-bound grant by itself,
# within connector.naptime of its expiry, through the write path (origin
# "expiry"), with no call from anyone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('expiry');
$node->safe_psql('postgres', ConnectorTest::crm_setup());

my $granted = time;
is($node->safe_psql('postgres',
	"SELECT connector.grant('crm', '2', '1', 'jit-1', now() + interval '2 seconds')"),
	'granted', 'a 2-second grant');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 1'),
	'1', 'the grant is there');

# Wait (at most 15 s) for the worker to revoke it.
my $left;
my $deadline = time + 15;
do
{
	usleep(100_000);
	$left = $node->safe_psql('postgres',
		'SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 1');
} while ($left ne '0' && time < $deadline);
my $took = time - $granted;
is($left, '0', 'the worker revoked the expired grant by itself');
cmp_ok($took, '>=', 1.9, 'not before its expiry');
cmp_ok($took, '<', 6, sprintf('within a few seconds of it (%.1f s after the grant)', $took));

is($node->safe_psql('postgres', q{
	SELECT concat_ws(' ', event->>'type', event #>> '{data,origin,via}', event #>> '{data,origin,operation}')
	  FROM connector.changes('crm') WHERE event #>> '{data,account,id}' = '2'
	   AND event #>> '{data,entitlement,id}' = '1' ORDER BY position DESC LIMIT 1}),
	'access.revoked expiry revoke', 'its access.revoked event has origin.via = expiry');
is($node->safe_psql('postgres', 'SELECT count(*) FROM "Crm App".user_roles'), '4',
	'the grants without expiry stay');

$node->stop('fast');
done_testing();
