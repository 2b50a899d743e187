# Crashes during delivery: the dispatcher worker killed with SIGKILL in the
# middle of a batch, and the server stopped with -m immediate while a slow
# receiver holds a request.  After the restart every committed event is
# delivered at least once, every retried message is byte-identical to its
# earlier attempts, and no event of an aborted transaction ever appears.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
# the test framework turns restart_after_crash off; a crash restart is the point here
my $node = ConnectorTest::node('crash', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
my $rx = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.15' ]);
my $rx1 = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.05' ]);
ConnectorTest::deliv_add_endpoint($node, 'batched', $rx->url, $secret, { batch_size => 5 });
ConnectorTest::deliv_add_endpoint($node, 'single', $rx1->url, $secret);

# an aborted transaction: its events must never be seen
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO "Crm App".users (id, login) VALUES (501, 'ghost-rollback');
	ROLLBACK;
});

# ---- SIGKILL of the worker mid-batch ----
ConnectorTest::deliv_grants($node, 100);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_count($rx) >= 3 }, 30), 'delivery under way');
# a transaction left open when the crash comes
my ($in, $out, $err) = ('', '', '');
my $open = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	q{BEGIN; INSERT INTO "Crm App".users (id, login) VALUES (502, 'ghost-crash'); SELECT pg_sleep(120);} ],
	\$in, \$out, \$err);
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE query ~ 'ghost-crash' AND state = 'active' AND pid <> pg_backend_pid()");
my $pid = ConnectorTest::deliv_worker_pid($node);
ok($pid, "the worker runs (pid $pid)");
my $delivered_before = () = ConnectorTest::deliv_delivered_ids($rx);
ok($delivered_before < 100, "killed mid-stream ($delivered_before of 100 delivered)");
kill 'KILL', $pid;
$open->finish;
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server is back after the crash');
my $pid2 = ConnectorTest::deliv_worker_pid($node);
ok($pid2 && $pid2 != $pid, 'a new worker serves the database');

# ---- immediate shutdown during delivery ----
ConnectorTest::deliv_grants($node, 50);
my $seen = ConnectorTest::deliv_count($rx);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_count($rx) >= $seen + 2 }, 30), 'delivery under way again');
$node->stop('immediate');
$node->start;

my @want = ConnectorTest::deliv_event_ids($node);
is(scalar @want, 150, 'the 150 committed events are in changes()');
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx) >= 150 && ConnectorTest::deliv_delivered_ids($rx1) >= 150 }, 90),
	'after the restarts both endpoints caught up');
for my $r ([ 'batched', $rx ], [ 'single', $rx1 ])
{
	my ($name, $x) = @$r;
	my @got = ConnectorTest::deliv_delivered_ids($x);
	is_deeply([ sort @got ], [ sort @want ], "$name: every committed event delivered at least once");
	is_deeply(\@got, \@want, "$name: first deliveries in position order");
	is_deeply(ConnectorTest::deliv_body_mismatches($x), {}, "$name: retried messages are byte-identical");
	is(scalar(grep { $_->{body} =~ /ghost/ } $x->entries), 0, "$name: no event of an aborted transaction");
	is(scalar(grep { !$_->{verified} } $x->entries), 0, "$name: every request verifies");
}
my %ids;
$ids{ $_->{headers}{'webhook-id'} }++ for $rx->entries, $rx1->entries;
note('messages sent more than once: ' . scalar(grep { $ids{$_} > 1 } keys %ids));
is($node->safe_psql('postgres', "SELECT count(*) FROM connector.changes('crm', 0, 100000) WHERE event::text ~ 'ghost'"),
	'0', 'changes() has no event of an aborted transaction');

$rx->stop;
$rx1->stop;
$node->stop('fast');
done_testing();
