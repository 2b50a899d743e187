# A long outage: the receiver is down while a large backlog accumulates
# (CONNECTOR_BACKLOG_EVENTS, default 100000, written by a few big
# INSERT ... SELECT into the membership table); when it returns, the backlog
# drains in position order, every position once, with flat worker memory and
# without blocking writers; then retention and VACUUM shrink the outbox.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use JSON::PP;
use lib 'test/t';
use ConnectorTest;

my $events = $ENV{CONNECTOR_BACKLOG_EVENTS} // 100000;
my $batch = $ENV{CONNECTOR_BACKLOG_BATCH} // 1000;
my $statements = 10;
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $rx = ConnectorTest::Receiver->start(secret => $secret);
my ($port, $dir) = ($rx->{port}, $rx->{dir});
$rx->stop;

my $node = ConnectorTest::node('backlog', conf => "connector.retention = '1min'\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', qq{
SELECT connector.add_endpoint('crm', 'hook', 'http://127.0.0.1:$port/hook', '$secret',
	'{"batch_size": $batch}')});
my $start = $node->safe_psql('postgres', 'SELECT cursor FROM connector.endpoint');

my $t0 = time;
my $per = int($events / $statements);
for my $i (1 .. $statements)
{
	$node->safe_psql('postgres', qq{
INSERT INTO "Crm App".user_roles SELECT (ARRAY[1, 2, 9, 10])[1 + g % 4], (ARRAY[1, 2, 7])[1 + g % 3], NULL
  FROM generate_series(1, $per) g});
}
my $gen = time - $t0;
$events = $per * $statements;
my $size_full = $node->safe_psql('postgres', "SELECT pg_total_relation_size('connector.outbox')");
note sprintf('backlog: %d events written in %.1f s (%.0f/s); outbox %.1f MB',
	$events, $gen, $events / $gen, $size_full / 1e6);
$node->poll_query_until('postgres', 'SELECT last_error IS NOT NULL FROM connector.endpoint')
  or die 'the dispatcher never tried';
sleep 2;
is($node->safe_psql('postgres', 'SELECT delivered FROM connector.endpoint'), '0',
	'nothing delivered while the receiver is down');
my $last = $node->safe_psql('postgres', 'SELECT last_position FROM connector.seal_state');
is($last - $start, $events, "every event is sealed ($events)");

# the receiver returns; sample the worker's memory and time writers
my $wpid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'");
$rx = ConnectorTest::Receiver->start(secret => $secret, port => $port, dir => $dir);
my (@rss, @anon, @writes);
$t0 = time;
my $next_write = $t0;
my $deadline = $t0 + ($ENV{CONNECTOR_BACKLOG_TIMEOUT} // 600);
my $delivered = 0;
while (time < $deadline)
{
	my $kb = ConnectorTest::reliab_rss_kb($wpid);
	push @rss, $kb if defined $kb;
	$kb = ConnectorTest::reliab_rss_kb($wpid, 'RssAnon');
	push @anon, $kb if defined $kb;
	if (time >= $next_write)
	{
		my $w0 = time;
		# a small write into the table the backlog came from, and a platform call
		$node->safe_psql('postgres', q{
INSERT INTO "Crm App".user_roles VALUES (9, 2, NULL);
DELETE FROM "Crm App".user_roles WHERE ctid = (SELECT max(ctid) FROM "Crm App".user_roles WHERE user_id = 9 AND role_id = 2)});
		push @writes, time - $w0;
		$next_write = time + 1;
	}
	$delivered = $node->safe_psql('postgres', 'SELECT delivered FROM connector.endpoint');
	last if $delivered >= $events + 2 * @writes;
	usleep(200_000);
}
my $drain = time - $t0;
my $sealed = $node->safe_psql('postgres', 'SELECT last_position FROM connector.seal_state') - $start;
is($delivered, $sealed, "the whole backlog and the writes during the drain were delivered ($delivered)");
note sprintf('drain: %d events in %.1f s (%.0f/s), batch_size %d', $delivered, $drain, $delivered / $drain, $batch);

note sprintf('worker VmRSS: first %d kB, max %d kB, last %d kB (%d samples)',
	$rss[0], (sort { $b <=> $a } @rss)[0], $rss[-1], scalar @rss);
# RssAnon leaves out shared buffers, which VmRSS counts as the worker reads them
my ($first_rss, $max_rss, $last_rss) = ($anon[0], (sort { $b <=> $a } @anon)[0], $anon[-1]);
note sprintf('worker RssAnon: first %d kB, max %d kB, last %d kB', $first_rss, $max_rss, $last_rss);
# a round holds a few prefetched batches (bodies and their JSON): bounded by
# batch_size, not by the backlog
cmp_ok($max_rss - $first_rss, '<', 128 * 1024, 'the worker memory stays bounded while draining (grows < 128 MB)');
cmp_ok($last_rss - $first_rss, '<', 16 * 1024, 'and it does not keep what it used (< 16 MB more at the end)');
my $max_write = (sort { $b <=> $a } @writes)[0];
note sprintf('writes during the drain: %d, slowest %.3f s', scalar @writes, $max_write);
cmp_ok(scalar @writes, '>=', 1, 'writers ran during the drain');
cmp_ok($max_write, '<', 2, 'no writer was blocked by the drain (slowest write < 2 s)');

# order: the messages' first positions strictly increase, every position once
my @firsts;
my %seen;
my $dups = 0;
for my $e ($rx->entries)
{
	next unless $e->{status} == 200;
	my $doc = decode_json($e->{body});
	my @ev = $doc->{type} eq 'event.batch' ? @{ $doc->{data}{events} } : ($doc);
	push @firsts, $ev[0]{data}{position};
	$dups += $seen{ $_->{data}{position} }++ ? 1 : 0 for @ev;
}
my @unordered = grep { $firsts[$_] <= $firsts[ $_ - 1 ] } 1 .. $#firsts;
is(scalar @unordered, 0, 'messages arrive in position order (' . scalar(@firsts) . ' messages)');
my @missing = grep { !$seen{$_} } $start + 1 .. $start + $sealed;
is(scalar @missing, 0, 'every position was delivered');
is($dups, 0, 'none twice (no retry was needed once the receiver was up)');

# retention: everything is delivered; backdate it past connector.retention
# (the worker's own retention may have begun already: compare with the full size)
my $size_before = $node->safe_psql('postgres', "SELECT pg_total_relation_size('connector.outbox')");
$node->safe_psql('postgres', "UPDATE connector.outbox SET occurred_at = occurred_at - interval '1 hour'");
my ($purged, $calls) = (0, 0);
while (1)
{
	my $n = $node->safe_psql('postgres', 'SELECT connector.purge_events(100)');
	$calls++;
	$purged += $n;
	last if $n == 0 && $node->safe_psql('postgres', 'SELECT count(*) FROM connector.outbox') == 0;
	die 'purge does not finish' if $calls > 100000;
}
$node->safe_psql('postgres', 'VACUUM connector.outbox');
my $size_after = $node->safe_psql('postgres', "SELECT pg_total_relation_size('connector.outbox')");
note sprintf('outbox: %.2f MB full, %.2f MB once delivered, %.2f MB after purge_events (%d calls) and VACUUM',
	$size_full / 1e6, $size_before / 1e6, $size_after / 1e6, $calls);
cmp_ok($size_after, '<', $size_full / 5, 'retention and VACUUM give the space back');
is($node->safe_psql('postgres', 'SELECT purged_through = last_position FROM connector.seal_state'), 't',
	'purged_through reaches the end of the stream');

# the stream goes on after the purge
$node->safe_psql('postgres', q{SELECT connector.disable('crm', '1')});
ok($node->poll_query_until('postgres', "SELECT delivered = $sealed + 1 FROM connector.endpoint"),
	'an event after the purge is delivered');

$node->stop('fast');
$rx->stop;
done_testing();
