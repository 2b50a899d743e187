# Push delivery end to end: a real receiver on loopback verifies every
# signature; ordering, ids and bodies are checked against changes().
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $rx = ConnectorTest::Receiver->start(secret => $secret);
my $node = ConnectorTest::node('delivery');
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres',
	"SELECT connector.add_endpoint('crm', 'hook', '" . $rx->url . "', '$secret')");

$node->safe_psql('postgres', 'INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL)');
my @got = $rx->wait_for(1);
is(scalar @got, 1, 'one message for one change');
ok($got[0]{verified}, 'its signature verifies with an independent implementation');
my $event = $node->safe_psql('postgres',
	"SELECT event::text FROM connector.changes('crm') ORDER BY position DESC LIMIT 1");
is($got[0]{body}, $event, 'the body is the event of changes(), byte for byte');
is($got[0]{headers}{'webhook-id'}, ConnectorTest::json_field($event, 'id'), 'webhook-id is the event id');
like($got[0]{headers}{'user-agent'}, qr{^connector/}, 'user-agent');

# many changes arrive in order
$node->safe_psql('postgres', 'INSERT INTO "Crm App".user_roles SELECT 1, 2, NULL FROM generate_series(1, 50)');
@got = $rx->wait_for(51);
my @ids = map { ConnectorTest::json_field($_->{body}, 'id') } @got[1 .. 50];
my @want = split /\n/, $node->safe_psql('postgres',
	"SELECT event->>'id' FROM connector.changes('crm') ORDER BY position OFFSET 1");
is_deeply(\@ids, \@want, '50 messages, in position order');
# the receiver logs a request before it answers: the worker records the
# last acknowledgement a moment later
ok($node->poll_query_until('postgres', "SELECT delivered || '/' || state FROM connector.status", '51/active'),
	'status counts what was delivered');

$rx->stop;
$node->stop('fast');
done_testing();
