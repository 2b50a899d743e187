# Endpoint options and admin functions seen from a real receiver: batches,
# the types filter, extra headers, unordered delivery bounded by
# max_in_flight, from_position, secret rotation, redeliver; endpoints and
# databases that do not hold each other up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256_base64);
use MIME::Base64 qw(decode_base64);
use JSON::PP;
use Time::HiRes qw(time);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $secret2 = 'whsec_' . MIME::Base64::encode_base64('0123456789abcdefghijklmnopqrstuv', '');
my $node = ConnectorTest::node('options', conf => "connector.max_in_flight = 4\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());

# ---- batches, types, headers, from_position, rotation: one stream ----
my $start = ConnectorTest::deliv_last_position($node);
ConnectorTest::deliv_grants($node, 2);		# before the endpoints: only from_position sees them
my %rx;
$rx{batch} = ConnectorTest::Receiver->start(secret => $secret, script => '500');
ConnectorTest::deliv_add_endpoint($node, 'batch', $rx{batch}->url, $secret, { batch_size => 3 });
$rx{types} = ConnectorTest::Receiver->start(secret => $secret);
ConnectorTest::deliv_add_endpoint($node, 'types', $rx{types}->url, $secret,
	{ types => ['access.revoked'] });
$rx{headers} = ConnectorTest::Receiver->start(secret => $secret);
ConnectorTest::deliv_add_endpoint($node, 'headers', $rx{headers}->url, $secret,
	{ headers => { 'x-tenant' => 'acme', 'authorization' => 'Bearer t0k' } });
$rx{from} = ConnectorTest::Receiver->start(secret => $secret);
ConnectorTest::deliv_add_endpoint($node, 'from', $rx{from}->url, $secret,
	{ from_position => 0 + $start });
# rotation: the receiver knows only the new secret
$rx{rot} = ConnectorTest::Receiver->start(secret => $secret2);
ConnectorTest::deliv_add_endpoint($node, 'rot', $rx{rot}->url, $secret);
$node->safe_psql('postgres', "SELECT connector.rotate_secret('crm', 'rot', '$secret2', '1 hour')");

my $before = ConnectorTest::deliv_last_position($node);
# one transaction, sealed at once: batches are cut from what is sealed
$node->safe_psql('postgres', q{BEGIN;
	INSERT INTO "Crm App".user_roles SELECT 1, 2, NULL FROM generate_series(1, 7);
	DELETE FROM "Crm App".user_roles WHERE user_id = 1 AND role_id = 2;
	COMMIT;});
my @all = ConnectorTest::deliv_event_ids($node);
my @new = ConnectorTest::deliv_event_ids($node, $before);
my @revoked = split /\n/, $node->safe_psql('postgres',
	"SELECT event->>'id' FROM connector.changes('crm', $before, 1000) WHERE event->>'type' = 'access.revoked' ORDER BY position");
ok(@revoked >= 7, 'revocations were captured');

# batch_size 3: 7 grants + revocations in one stream, cut into messages of 3
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{batch}) >= @new }, 60),
	'batch: every event delivered');
my @b = grep { $_->{status} == 200 } $rx{batch}->entries;
my @docs = map { decode_json($_->{body}) } @b;
is(scalar(grep { $_->{type} ne 'event.batch' } @docs), 0, 'batch: every body is an event.batch');
is(scalar(grep { @{ $_->{data}{events} } != 3 } @docs[0 .. $#docs - 1]), 0, 'batch: full batches of 3');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{batch}) ], \@new, 'batch: data.events in position order');
is(scalar(grep { $_->{id} ne $_->{data}{events}[0]{id} && $_->{id} =~ /^batch_/ } @docs), scalar @docs,
	'batch: the batch has its own id');
my @first = grep { $_->{headers}{'webhook-id'} eq $b[0]{headers}{'webhook-id'} } $rx{batch}->entries;
is_deeply([ map { $_->{status} } @first ], [ 500, 200 ], 'batch: the first batch was retried');
is($first[0]{body}, $first[1]{body}, 'batch: a retried batch has the same id and an identical body');

# types filter: only access.revoked
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{types}) >= @revoked }, 30),
	'types: the revocations arrive');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{types}) ], \@revoked, 'types: nothing but access.revoked');

# extra headers
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{headers}) >= @new }, 30),
	'headers: delivered');
my ($h) = $rx{headers}->entries;
is($h->{headers}{'x-tenant'} . '|' . $h->{headers}{authorization}, 'acme|Bearer t0k', 'headers: extra headers are sent');
ok($h->{verified}, 'headers: the message still verifies');

# from_position: the two events before the endpoint existed are sent too
# (the cursor starts at the given position; events after it are sent)
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{from}) >= @all - $start }, 30),
	'from_position: delivered');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{from}) ], [ @all[ $start .. $#all ] ],
	'from_position: the stream starts after the given position');

# rotation: two signatures, one per secret; a receiver with only the new one verifies
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{rot}) >= @new }, 30),
	'rotation: delivered to a receiver that knows only the new secret');
my ($r) = $rx{rot}->entries;
ok($r->{verified}, 'rotation: verified with the new secret alone');
my @sigs = split / /, $r->{headers}{'webhook-signature'};
is(scalar @sigs, 2, 'rotation: two signatures during the overlap');
my $signed = "$r->{headers}{'webhook-id'}.$r->{headers}{'webhook-timestamp'}.$r->{body}";
my %mac;
for my $s ($secret, $secret2)
{
	my $m = hmac_sha256_base64($signed, decode_base64(substr($s, 6)));
	$m .= '=' while length($m) % 4;
	$mac{$s} = "v1,$m";
}
is_deeply(\@sigs, [ $mac{$secret2}, $mac{$secret} ], 'rotation: new, then old signature, each verifying with its own secret');

# redeliver: the stream restarts at a position, same ids and bodies
my @seen = grep { $_->{status} == 200 } $rx{headers}->entries;
$node->safe_psql('postgres', "SELECT connector.redeliver('crm', 'headers', " . ($before + 3) . ")");
ok(ConnectorTest::deliv_wait_until(sub { grep({ $_->{status} == 200 } $rx{headers}->entries) >= @seen + @new - 2 }, 30),
	'redeliver: delivered again');
my @again = (grep { $_->{status} == 200 } $rx{headers}->entries)[ scalar @seen .. $#seen + @new - 2 ];
is_deeply([ map { $_->{headers}{'webhook-id'} } @again ], [ @new[ 2 .. $#new ] ], 'redeliver: from the position on');
is_deeply([ map { $_->{body} } @again ], [ map { $_->{body} } @seen[ 2 .. $#seen ] ], 'redeliver: the same bodies');
is_deeply(ConnectorTest::deliv_body_mismatches($_), {}, 'same id, same body') for values %rx;
$_->stop for values %rx;

# ---- unordered, bounded by max_in_flight = 4; ordered waits for each ----
my $slow = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.3' ]);
my $slow_o = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.3' ]);
ConnectorTest::deliv_add_endpoint($node, 'unordered', $slow->url, $secret, { ordered => JSON::PP::false });
$node->safe_psql('postgres', "SELECT connector.remove_endpoint('crm', x) FROM unnest(ARRAY['batch','types','headers','from','rot']) x");
ConnectorTest::deliv_grants($node, 8);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($slow) >= 8 }, 30), 'unordered: delivered');
my @t = sort { $a <=> $b } map { $_->{received_at} } $slow->entries;
my $max_together = 0;
for my $i (0 .. $#t)
{
	my $n = grep { $_ >= $t[$i] && $_ < $t[$i] + 0.2 } @t;
	$max_together = $n if $n > $max_together;
}
is($max_together, 4, 'unordered: up to max_in_flight (4) requests at once');
ok($t[-1] - $t[0] < 1.5, sprintf('unordered: 8 slow answers overlap (%.2fs)', $t[-1] - $t[0]));
$node->safe_psql('postgres', "SELECT connector.remove_endpoint('crm', 'unordered')");
ConnectorTest::deliv_add_endpoint($node, 'ordered', $slow_o->url, $secret);
ConnectorTest::deliv_grants($node, 4);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($slow_o) >= 4 }, 30), 'ordered: delivered');
@t = map { $_->{received_at} } $slow_o->entries;
ok((grep { $t[$_] - $t[ $_ - 1 ] < 0.28 } 1 .. $#t) == 0, 'ordered: one message at a time');
$node->safe_psql('postgres', "SELECT connector.remove_endpoint('crm', 'ordered')");
$slow->stop;
$slow_o->stop;

# ---- a failing endpoint never delays another; two databases at once ----
my $hang = ConnectorTest::Receiver->start(secret => $secret, extra => ['--hang']);
my $fast = ConnectorTest::Receiver->start(secret => $secret);
my $fast2 = ConnectorTest::Receiver->start(secret => $secret);
ConnectorTest::deliv_add_endpoint($node, 'hangs', $hang->url, $secret, { timeout => '20s' });
ConnectorTest::deliv_add_endpoint($node, 'fast', $fast->url, $secret);
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('db2', 'CREATE EXTENSION connector');
$node->safe_psql('db2', ConnectorTest::crm_setup());
ConnectorTest::deliv_add_endpoint($node, 'fast2', $fast2->url, $secret, {}, 'db2');
ConnectorTest::deliv_add_endpoint($node, 'hangs2', $hang->url, $secret, { timeout => '20s' }, 'db2');
ok(ConnectorTest::deliv_worker_pid($node, 'db2'), 'db2 has its own worker');
my $t0 = time;
my $b1 = ConnectorTest::deliv_last_position($node);
my $b2 = ConnectorTest::deliv_last_position($node, 'db2');
for (1 .. 50)
{
	ConnectorTest::deliv_grants($node, 1);
	ConnectorTest::deliv_grants($node, 1, 'db2');
}
ok(ConnectorTest::deliv_wait_until(sub {
	ConnectorTest::deliv_delivered_ids($fast) >= 50 && ConnectorTest::deliv_delivered_ids($fast2) >= 50 }, 15),
	'both databases deliver while another endpoint hangs');
my $took = time - $t0;
ok($took < 10, sprintf('100 messages in %.1fs, well before the 20s timeout of the hanging endpoint', $took));
is_deeply([ ConnectorTest::deliv_delivered_ids($fast) ], [ ConnectorTest::deliv_event_ids($node, $b1) ],
	'database postgres: all, in order');
is_deeply([ ConnectorTest::deliv_delivered_ids($fast2) ], [ ConnectorTest::deliv_event_ids($node, $b2, 'db2') ],
	'database db2: all, in order');
is(ConnectorTest::deliv_count($hang), 2, 'each hanging endpoint holds one request');

$hang->stop;
$fast->stop;
$fast2->stop;
$node->stop('fast');
done_testing();
