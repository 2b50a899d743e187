# Every failure class of spec section 7, against real receivers on loopback:
# 5xx, 429 with Retry-After, 408, timeouts, connection resets, a huge body,
# 3xx, network errors, 410 and other 4xx; backoff growth and its bound.
# The endpoints share one event stream and fail side by side, each with its
# own receiver, so the suite takes as long as its slowest case.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $node = ConnectorTest::node('failures', conf => "connector.max_attempts = 3\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());

# name => [receiver options, endpoint options]
my %case = (
	e5xx     => [ { script => '500,502,503,200' } ],
	e429     => [ { script => '429:2,200' } ],
	e408     => [ { script => '408,408,408,408,200' } ],
	timeout  => [ { script => 'hang,hang,200' }, { timeout => '300ms' } ],
	reset    => [ { script => 'reset,reset,200' } ],
	huge     => [ { script => 'huge' } ],
	redirect => [ { script => '301,302:https://example.com/,200' } ],
	e410     => [ { script => '410' } ],
	e400     => [ { script => '400,422,400' } ],
	backoff  => [ { script => join(',', ('500') x 8) } ],
	down     => [ {} ],
);
my %rx;
for my $name (sort keys %case)
{
	$rx{$name} = ConnectorTest::Receiver->start(secret => $secret, %{ $case{$name}[0] });
	ConnectorTest::deliv_add_endpoint($node, $name, $rx{$name}->url, $secret, $case{$name}[1]);
}
# a receiver that is down: stop it, keep its port for later
my $down_port = $rx{down}{port};
$rx{down}->stop;

ConnectorTest::deliv_grants($node, 3);
my @want = ConnectorTest::deliv_event_ids($node);
is(scalar @want, 3, 'three events to deliver');

# Every endpoint but the disabled and the unreachable one gets all three events.
for my $name (grep { $_ ne 'e410' && $_ ne 'down' } sort keys %case)
{
	my $expect = $name eq 'e400' ? 2 : 3;
	ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{$name}) >= $expect }, 60),
		"$name: delivered");
}

# 5xx: retried until accepted, same message each time.
my @r = $rx{e5xx}->entries;
is_deeply([ map { $_->{status} } @r[0 .. 3] ], [ 500, 502, 503, 200 ], '5xx: retried until 200');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{e5xx}) ], \@want, '5xx: all events, in order');
ok($node->poll_query_until('postgres',
	"SELECT consecutive_failures || '/' || coalesce(last_error, 'none') || '/' || delivered FROM connector.status WHERE endpoint = 'e5xx'",
	'0/none/3'), '5xx: status clears the failure after success');

# 429 with Retry-After: 2 is honoured although retry_max is 1s.
@r = $rx{e429}->entries;
ok($r[1]{received_at} - $r[0]{received_at} >= 1.9,
	sprintf('429: Retry-After honoured (%.2fs between attempts)', $r[1]{received_at} - $r[0]{received_at}));

# 408 is retried past max_attempts (3): not a permanent rejection.
@r = $rx{e408}->entries;
is(scalar(grep { $_->{status} == 408 } @r), 4, '408: retried four times although max_attempts is 3');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{e408}) ], \@want, '408: nothing dead-lettered');

# Timeouts: the endpoint's 300ms timeout gives up on a hanging receiver.
@r = $rx{timeout}->entries;
ok($r[1]{received_at} - $r[0]{received_at} < 2.5, 'timeout: the per-endpoint timeout applies, not http_timeout (5s)');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{timeout}) ], \@want, 'timeout: all events, in order');

# Connection reset: retried.
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{reset}) ], \@want, 'reset: all events, in order');
is(scalar(grep { !defined $_->{status} } $rx{reset}->entries), 2, 'reset: two resets seen');

# A 50 MB answer: delivered once, the body is not kept.
@r = $rx{huge}->entries;
is(scalar @r, 3, 'huge body: 200 is delivered, not retried');
my $pid = ConnectorTest::deliv_worker_pid($node);
my $anon = ConnectorTest::deliv_proc_kb($pid, 'RssAnon');
ok(defined $anon && $anon < 40 * 1024, "huge body: worker private memory stays small (RssAnon ${\($anon // '?')} kB)");

# 3xx: a failure, never followed.
@r = $rx{redirect}->entries;
is_deeply([ map { $_->{status} } @r[0 .. 2] ], [ 301, 302, 200 ], '3xx: a failure, retried');
is(scalar(grep { $_->{path} ne '/hook' } @r), 0, '3xx: the Location is not followed');

# Other 4xx: dead-lettered after connector.max_attempts = 3, the stream moves on.
@r = $rx{e400}->entries;
is_deeply([ map { $_->{status} } @r ], [ 400, 422, 400, 200, 200 ], '4xx: three attempts, then the next events');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{e400}) ], [ @want[1, 2] ], '4xx: the stream moves on');
is($node->safe_psql('postgres',
	"SELECT message_id || '/' || attempts || '/' || last_status || '/' || last_error FROM connector.dead_letters WHERE endpoint = 'e400'"),
	"$want[0]/3/400/HTTP 400", '4xx: the message is in connector.dead_letters');
ok($node->poll_query_until('postgres',
	"SELECT delivered || '/' || dead_lettered || '/' || pending_events FROM connector.status WHERE endpoint = 'e400'",
	'2/1/0'), '4xx: status counts it as dead-lettered');

# Backoff: the gaps grow and stay bounded by retry_max (1s) plus a round.
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{backoff}) >= 3 }, 60),
	'backoff: delivered after eight failures');
@r = $rx{backoff}->entries;
my @gap = map { $r[$_]{received_at} - $r[ $_ - 1 ]{received_at} } 1 .. 8;
my $gaps = join(' ', map { sprintf '%.2f', $_ } @gap);
ok($gap[0] < 0.5, "backoff: the first retry is soon ($gaps)");
ok($gap[5] + $gap[6] + $gap[7] > 2 * ($gap[0] + $gap[1]), "backoff: the gaps grow ($gaps)");
ok((grep { $_ > 1.6 } @gap) == 0, "backoff: no gap beyond retry_max ($gaps)");

# 410: the endpoint is disabled, status says so, nothing more is sent.
is(ConnectorTest::deliv_status($node, 'e410', "state || '/' || disabled_reason || '/' || last_status"),
	'disabled/the endpoint answered 410 Gone/410', '410: the endpoint is disabled');
ok(ConnectorTest::deliv_status($node, 'e410', 'pending_events') >= 3, '410: its events wait');
is(ConnectorTest::deliv_count($rx{e410}), 1, '410: one request only');

# Network errors: the receiver is down; status shows why, the stream waits.
ok($node->poll_query_until('postgres',
	"SELECT consecutive_failures >= 2 AND last_error ~* 'connect' FROM connector.status WHERE endpoint = 'down'"),
	'network error: retried, last_error says why');

# More events while both are out, then they come back: nothing lost.
ConnectorTest::deliv_grants($node, 2);
@want = ConnectorTest::deliv_event_ids($node);
$rx{down} = ConnectorTest::Receiver->start(secret => $secret, port => $down_port);
$node->safe_psql('postgres', "SELECT connector.enable_endpoint('crm', 'e410')");
for my $name (qw(down e410))
{
	ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{$name}) >= 5 }, 60),
		"$name: delivery resumes");
	is_deeply([ ConnectorTest::deliv_delivered_ids($rx{$name}) ], \@want, "$name: every event, in order");
}
# the receiver logs an answer before the worker records it: wait for the record
ok($node->poll_query_until('postgres',
	"SELECT state || '/' || delivered FROM connector.status WHERE endpoint = 'e410'", 'active/5'),
	'410: enable_endpoint resumes');

# Every attempt of every message carried the same body, and verified.
for my $name (sort keys %rx)
{
	ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{$name}) >= ($name eq 'e400' ? 4 : 5) }, 30);
	is_deeply(ConnectorTest::deliv_body_mismatches($rx{$name}), {}, "$name: retries are byte-identical");
	is(scalar(grep { !$_->{verified} } $rx{$name}->entries), 0, "$name: every request verifies");
}

$_->stop for values %rx;
$node->stop('fast');
done_testing();
