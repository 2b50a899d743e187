# Security suite (issue 13, attack 1): a table owner becomes superuser
# through the dispatcher's expiry.  The owner of the hostile application of
# test/security/fixtures/hostile.sql inserts a grant that expires in one
# second; nobody calls anything; the dispatcher deletes it by itself, and
# the owner's triggers, checks and domain run during that delete: as the
# owner, never as a superuser.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('sec_expiry');
$node->safe_psql('postgres', slurp_file('test/security/fixtures/hostile.sql'));
my $dispatcher = ConnectorTest::deliv_worker_pid($node);
ok($dispatcher, 'the dispatcher runs');

# The owner's own insert runs its code as the owner: start the log after it.
$node->safe_psql('postgres', q{
SET ROLE regress_owner;
INSERT INTO crm.user_roles (user_id, role_id, valid_until) VALUES (2, 1, now() + interval '1 second');
RESET ROLE;
DELETE FROM crm.evil_log;
});

my $left;
my $deadline = time + 20;
do
{
	usleep(100_000);
	$left = $node->safe_psql('postgres',
		'SELECT count(*) FROM crm.user_roles WHERE user_id = 2 AND role_id = 1');
} while ($left ne '0' && time < $deadline);
is($left, '0', 'the dispatcher revoked the expired grant by itself');
is($node->safe_psql('postgres', q{
	SELECT concat_ws(' ', event->>'type', event #>> '{data,origin,via}') FROM connector.changes('crm')
	 WHERE event #>> '{data,account,id}' = '2' AND event #>> '{data,entitlement,id}' = '1'
	 ORDER BY position DESC LIMIT 1}),
	'access.revoked expiry', 'its event says origin.via = expiry');

is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT ran_as || CASE WHEN is_super THEN ' (superuser)' ELSE '' END, ', ')
	  FROM crm.evil_log WHERE tag ~ 'DELETE trigger on user_roles'}),
	'regress_owner', 'the owner\'s delete triggers ran as the owner, never as a superuser');
is($node->safe_psql('postgres', 'SELECT count(*) FROM crm.evil_log WHERE is_super'), '0',
	'none of the owner\'s code ran as a superuser');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'}), 'f',
	'regress_owner did not become a superuser');

is(ConnectorTest::deliv_worker_pid($node), $dispatcher, 'the dispatcher is the same process');
ok(!$node->log_contains('terminated by signal'), 'no process crashed');

$node->stop('fast');
done_testing();
