# Failover: events committed on a primary while the receiver is down are
# delivered, with the same ids and bodies, by the standby once promoted.
# Before promotion the standby's dispatcher does nothing: no worker, no
# request.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
# start the receiver only to reserve its port and directory, then stop it:
# the endpoint's URL stays valid for the receiver that comes back later
my $rx = ConnectorTest::Receiver->start(secret => $secret);
my ($port, $dir) = ($rx->{port}, $rx->{dir});
$rx->stop;

my $primary = ConnectorTest::node('primary', streaming => 1);
$primary->safe_psql('postgres', ConnectorTest::crm_setup());
$primary->safe_psql('postgres', qq{
SELECT connector.add_endpoint('crm', 'hook', 'http://127.0.0.1:$port/hook', '$secret', '{"from_position": 0}');
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

# events on the primary, receiver down: the primary's dispatcher tries and fails
$primary->safe_psql('postgres', q{
INSERT INTO "Crm App".users (id, login) SELECT g, 'user-' || g FROM generate_series(1000, 1199) g;
SELECT connector.grant('crm', id::text, '2') FROM "Crm App".users WHERE id BETWEEN 1000 AND 1099;
INSERT INTO "Crm App".user_roles SELECT id, 1, NULL FROM "Crm App".users WHERE id >= 1100;
SELECT connector.disable('crm', '2');
});
$primary->poll_query_until('postgres', 'SELECT last_error IS NOT NULL FROM connector.status')
  or die 'the primary never tried to deliver';
my @before = ConnectorTest::reliab_changes($primary, 'crm');
is(scalar @before, 200 + 100 + 100 + 1, 'the primary lists every committed event');
is($primary->safe_psql('postgres', 'SELECT delivered FROM connector.status'), '0',
	'nothing was delivered by the primary');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('flush'));

# the standby in recovery: no worker, and (below) no request
ok($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 't', 'the standby is in recovery');
sleep 2;
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('connector dispatcher', 'connector launcher')"),
	'0', 'no connector worker runs while the server is in recovery');

$primary->stop('immediate');
# the receiver is back before the promotion: a request now could only come
# from the standby, which must not send while in recovery
$rx = ConnectorTest::Receiver->start(secret => $secret, port => $port, dir => $dir);
sleep 1;
my @early = $rx->entries;
is(scalar @early, 0, 'the standby sent nothing while in recovery');
$standby->promote;
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"),
	'the promoted standby runs a dispatcher');

my @got = $rx->wait_for(scalar @before, 120);
my @ids = map { ConnectorTest::json_field($_->{body}, 'id') } @got;
is_deeply(\@ids, [ map { $_->[1] } @before ],
	'every event committed on the old primary is delivered by the new one, same ids, in order');
is_deeply([ map { $_->{body} } @got ], [ map { $_->[2] } @before ], 'with the same bodies');
my @after = ConnectorTest::reliab_changes($standby, 'crm');
is_deeply([ map { $_->[1] } @after ], [ map { $_->[1] } @before ],
	'changes() on the new primary lists the same events with the same positions')
  and is_deeply([ map { $_->[0] } @after ], [ map { $_->[0] } @before ], '(positions)');

# and the new primary goes on: a new event follows, once
$standby->safe_psql('postgres', q{SELECT connector.enable('crm', '2')});
@got = $rx->wait_for(scalar @before + 1, 60);
is(ConnectorTest::json_field($got[-1]{body}, 'type'), 'account.enabled', 'new events follow on the new primary');
my @new = ConnectorTest::reliab_changes($standby, 'crm');
is($new[-1][0], $before[-1][0] + 1, 'its position follows the old primary\'s last one');
is_deeply([ ConnectorTest::reliab_outbox_problems($standby) ], [], 'the outbox is intact');

$standby->stop('fast');
$rx->stop;
done_testing();
