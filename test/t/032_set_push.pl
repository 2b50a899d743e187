# Push of Security Event Tokens (spec section 12, RFC 8935) through the
# dispatcher: a real cluster and real receivers on loopback
# (test/receiver/set_receiver.py verifies every SET against connector.jwks
# with python3-cryptography).  Success (202), each failure class (400 with
# {"err", "description"} recorded then dead-lettered, 401, 500 retried with
# the same bytes, no answer), 410, order across many events, key rotation,
# kill -9 of the dispatcher and an immediate shutdown mid-stream, a webhook
# endpoint unaffected by a failing SET endpoint, and the verification SET
# of a push stream.
use strict;
use warnings;
use JSON::PP;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConnectorTest;

my $node = ConnectorTest::node('set_push',
	conf => "restart_after_crash = on\nconnector.max_attempts = 3\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
my $old_kid = $node->safe_psql('postgres', "SELECT connector.add_signing_key('crm')");

my $dir = tempdir(CLEANUP => 1);
my $jwks = "$dir/jwks.json";

# the receivers read the key set from this file at every request
sub write_jwks
{
	my $k = $node->safe_psql('postgres', "SELECT connector.jwks('crm')");
	open my $fh, '>', "$jwks.tmp" or die $!;
	print $fh $k;
	close $fh;
	rename "$jwks.tmp", $jwks or die $!;
}
write_jwks();

my @receivers;
# A SET receiver; opts: script, auth, status_file.
sub set_receiver
{
	my (%o) = @_;
	my @extra = ('--jwks', $jwks);
	push @extra, '--auth', $o{auth} if $o{auth};
	push @extra, '--status-file', $o{status_file} if $o{status_file};
	push @extra, '--status-script', $o{script} if $o{script};
	my $rx = ConnectorTest::Receiver->start(script => undef, extra => \@extra);
	push @receivers, $rx;
	return $rx;
}

# replace receiver.py with set_receiver.py for these receivers
{
	no warnings 'redefine';
	my $orig = \&ConnectorTest::Receiver::start;
	*ConnectorTest::Receiver::start = sub {
		my ($class, %opt) = @_;
		return $orig->($class, %opt) unless grep { $_ eq '--jwks' } @{ $opt{extra} // [] };
		my $d = tempdir(CLEANUP => 1);
		my @cmd = ('python3', 'test/receiver/set_receiver.py', '--port', 0,
			'--log', "$d/log.jsonl", @{ $opt{extra} });
		my $pid = open(my $out, '-|', @cmd) or die "cannot start receiver: $!";
		my $port = <$out>;
		die "receiver did not start" unless defined $port;
		chomp $port;
		return bless { pid => $pid, out => $out, port => $port, dir => $d, tls => 0 }, $class;
	};
}

sub add_set_endpoint
{
	my ($name, $rx, $opts) = @_;
	my %o = (format => 'set', issuer => 'https://tx.example/ssf/crm', audience => 'rx-' . $name,
		%{ $opts // {} });
	ConnectorTest::deliv_add_endpoint($node, $name, $rx->url, 'whsec_' . ('A' x 32), \%o);
}

sub status
{
	my ($name, $col) = @_;
	return ConnectorTest::deliv_status($node, $name, $col);
}

sub wait_sql
{
	my ($sql, $what, $timeout) = @_;
	ok(ConnectorTest::deliv_wait_until(sub { $node->safe_psql('postgres', $sql) eq 't' }, $timeout // 60),
		$what);
}

# jtis of the SETs answered 2xx, in arrival order, each once
sub delivered_jtis
{
	my ($rx) = @_;
	my (%seen, @j);
	for my $e (grep { defined $_->{status} && $_->{status} >= 200 && $_->{status} < 300 } $rx->entries)
	{
		push @j, $e->{jti} unless $seen{ $e->{jti} // '' }++;
	}
	return @j;
}

# jtis whose attempts did not all carry the same bytes
sub body_mismatches
{
	my ($rx) = @_;
	my %b;
	$b{ $_->{jti} // '?' }{ $_->{body} } = 1 for $rx->entries;
	return grep { keys %{ $b{$_} } > 1 } keys %b;
}

sub unverified
{
	my ($rx) = @_;
	return map { $_->{reason} } grep { !$_->{verified} } $rx->entries;
}

# The SETs the events after a position give, as jtis "<event id>.<i>", for
# one SET per event (grants: SCIM prov:patch:notice)
sub grant_jtis
{
	my ($after) = @_;
	return map { "$_.0" } ConnectorTest::deliv_event_ids($node, $after);
}

# --- option checks -------------------------------------------------------

my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT connector.add_endpoint('crm', 'bad', 'http://127.0.0.1:9/hook', NULL, "
	  . "'{\"format\": \"set\", \"issuer\": \"i\", \"audience\": \"a\", \"batch_size\": 2}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: endpoint option "batch_size" must be 1 with format "set"/, 'batch_size > 1 with format set: 22023');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT connector.add_endpoint('crm', 'bad', 'http://127.0.0.1:9/hook', NULL, '{\"format\": \"set\", \"audience\": \"a\"}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: endpoint option "issuer" is required with format "set"/, 'format set without issuer: 22023');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT connector.add_endpoint('crm', 'bad', 'http://127.0.0.1:9/hook', NULL, '{\"types\": [\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\"]}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: endpoint option "types" contains unknown event type/, 'a SET URI in types of a webhook endpoint: 22023');

# --- success: one event, two SETs, in order, with the receiver's Authorization

my $ok = set_receiver(auth => 'Bearer rx-secret');
add_set_endpoint('ok', $ok, { headers => { Authorization => 'Bearer rx-secret' } });
my $from = ConnectorTest::deliv_last_position($node);
$node->safe_psql('postgres', 'UPDATE "Crm App".users SET active = false WHERE id = 1');
my ($ev) = ConnectorTest::deliv_event_ids($node, $from);
my @got = $ok->wait_for(2, 60);
is_deeply([ map { $_->{jti} } @got ], [ "$ev.0", "$ev.1" ], 'account.disabled: two SETs, each its own POST, in order');
is_deeply([ map { @{ $_->{events} } } @got ],
	[ 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
	  'https://schemas.openid.net/secevent/caep/event-type/session-revoked' ], 'RISC then CAEP');
is_deeply([ unverified($ok) ], [], 'every SET verified against jwks(), with the headers of RFC 8935 and the Authorization');
is($got[0]{status}, 202, 'answered 202');
is_deeply([ map { [$_->{iss}, $_->{aud}] } @got ],
	[ [ 'https://tx.example/ssf/crm', 'rx-ok' ], [ 'https://tx.example/ssf/crm', 'rx-ok' ] ], 'iss and aud from the options');
wait_sql("SELECT delivered = 2 AND cursor = $from + 1 AND last_status = 202 FROM connector.status WHERE endpoint = 'ok'",
	'status: 2 SETs delivered, the cursor past the event');
is($node->safe_psql('postgres', "SELECT count(*) FROM connector.ssf_set"), '0', 'nothing left waiting');

# --- failure classes, each its own endpoint and receiver; two grants -----

my $r400 = set_receiver(script => '400:invalid_key,400:invalid_key,400:invalid_key,400:invalid_key');
my $r401 = set_receiver(script => '401,401,401');
my $r500 = set_receiver(script => '500,500,503');
my $rhang = set_receiver(script => 'hang');
my $r410 = set_receiver(script => '410');
add_set_endpoint('e400', $r400);
add_set_endpoint('e401', $r401);
add_set_endpoint('e500', $r500);
add_set_endpoint('ehang', $rhang, { timeout => '1s' });
add_set_endpoint('e410', $r410);
$from = ConnectorTest::deliv_last_position($node);
ConnectorTest::deliv_grants($node, 2);
my @g = grant_jtis($from);
is(scalar @g, 2, 'two grant events');

my $want_err = 'HTTP 400: invalid_key: the receiver refused this SET (test)';
wait_sql("SELECT dead_lettered = 1 FROM connector.status WHERE endpoint = 'e400'", '400: dead-lettered after max_attempts');
is($node->safe_psql('postgres', "SELECT message_id || ' ' || attempts || ' ' || last_status || ' ' || last_error FROM connector.dead_letters WHERE endpoint = 'e400'"),
	"$g[0] 3 400 $want_err", 'the dead letter names the SET, its attempts and the receiver\'s err and description');
wait_sql("SELECT delivered = 1 AND cursor = $from + 2 FROM connector.status WHERE endpoint = 'e400'", '400: the next SET delivered after');
is_deeply([ delivered_jtis($r400) ], [ $g[1] ], '400: only the second SET acknowledged');

wait_sql("SELECT dead_lettered = 1 AND delivered = 1 FROM connector.status WHERE endpoint = 'e401'", '401: dead-lettered after max_attempts, then the next delivered');
is($node->safe_psql('postgres', "SELECT last_error FROM connector.dead_letters WHERE endpoint = 'e401'"), 'HTTP 401', '401 recorded');

wait_sql("SELECT delivered = 2 AND dead_lettered = 0 FROM connector.status WHERE endpoint = 'e500'", '500/503: retried until delivered, never dead-lettered');
is_deeply([ map { $_->{status} } $r500->entries ], [ 500, 500, 503, 202, 202 ], '500: three failures, then 202, then the next');
is_deeply([ body_mismatches($r500) ], [], '500: every retry sent the same bytes');

wait_sql("SELECT delivered = 2 FROM connector.status WHERE endpoint = 'ehang'", 'no answer: timed out and retried until delivered');
my @h = $rhang->entries;
is($h[0]{jti}, $g[0], 'the unanswered SET came again');
is_deeply([ body_mismatches($rhang) ], [], 'no answer: the retry sent the same bytes');

wait_sql("SELECT state = 'disabled' AND delivered = 0 FROM connector.status WHERE endpoint = 'e410'", '410 disables the endpoint');

for my $rx ($r400, $r401, $r500, $rhang, $r410)
{
	is_deeply([ unverified($rx) ], [], 'every SET of a failure receiver verified');
}

# status while a receiver keeps answering 400: its err and description
my $flag = "$dir/down";
open my $fh, '>', $flag or die $!;
print $fh "400:invalid_key";
close $fh;
my $r400s = set_receiver(status_file => $flag);
add_set_endpoint('e400s', $r400s);
ConnectorTest::deliv_grants($node, 1);
wait_sql("SELECT last_error = '$want_err' AND last_status = 400 FROM connector.status WHERE endpoint = 'e400s'",
	'status shows the receiver\'s err and description');
unlink $flag;
wait_sql("SELECT delivered + dead_lettered = 1 FROM connector.status WHERE endpoint = 'e400s'", 'then delivered (or dead-lettered after max_attempts)');

# --- a webhook endpoint keeps delivering while the SET endpoint fails ----

open $fh, '>', $flag or die $!;
print $fh "503";
close $fh;
my $down = set_receiver(status_file => $flag);
add_set_endpoint('down', $down);
my $wh = ConnectorTest::Receiver->start(secret => 'whsec_' . ('B' x 32));
ConnectorTest::deliv_add_endpoint($node, 'wh', $wh->url, 'whsec_' . ('B' x 32));
$from = ConnectorTest::deliv_last_position($node);
ConnectorTest::deliv_grants($node, 20);
my @ids = ConnectorTest::deliv_event_ids($node, $from);
$wh->wait_for(20, 60);
is_deeply([ ConnectorTest::deliv_delivered_ids($wh) ], \@ids, 'the webhook endpoint got all 20 events while the SET endpoint answers 503');
ok(status('down', 'delivered') == 0 && status('down', 'consecutive_failures') > 0, 'the SET endpoint is still failing meanwhile');
unlink $flag;
$down->wait_for(20, 60);
is_deeply([ delivered_jtis($down) ], [ map { "$_.0" } @ids ], 'then the SET endpoint got all 20, in order');
is_deeply([ body_mismatches($down) ], [], 'its retries carried the same bytes');

# --- order across many events, key rotation ------------------------------

my $many = set_receiver(script => join(',', ('202') x 40, '500', ('202') x 40, '500'));
add_set_endpoint('many', $many);
$from = ConnectorTest::deliv_last_position($node);
for (1 .. 5)
{
	ConnectorTest::deliv_grants($node, 60);
}
my @many_jtis = grant_jtis($from);
$many->wait_for(scalar(@many_jtis), 120);
is_deeply([ delivered_jtis($many) ], \@many_jtis, '300 SETs delivered in position order across two 500s');
is_deeply([ unverified($many) ], [], 'all 300 verified');

# rotation: the old key's SET is stuck retrying while a new key is added and
# the old retired; the retry, signed by the old key, still verifies
open $fh, '>', $flag or die $!;
print $fh "503";
close $fh;
my $rot = set_receiver(status_file => $flag);
add_set_endpoint('rot', $rot);
$from = ConnectorTest::deliv_last_position($node);
ConnectorTest::deliv_grants($node, 1);
ok(ConnectorTest::deliv_wait_until(sub { $rot->entries >= 2 }), 'the SET signed by the old key was tried');
my $new_kid = $node->safe_psql('postgres', "SELECT connector.add_signing_key('crm', 'ES256')");
$node->safe_psql('postgres', "SELECT connector.retire_signing_key('crm', '$old_kid')");
write_jwks();
ConnectorTest::deliv_grants($node, 1);
unlink $flag;
my @rot = $rot->wait_for(2, 60);
is_deeply([ map { $_->{kid} } @rot ], [ $old_kid, $new_kid ], 'the SET rendered before the rotation keeps the old kid; the next has the new');
is_deeply([ unverified($rot) ], [], 'both verify against jwks() while the retired key is published');
is_deeply([ body_mismatches($rot) ], [], 'the old SET was re-sent byte for byte');

# --- kill -9 of the dispatcher, then an immediate shutdown, mid-stream ----
# (ES256 now: each signing differs, so equal bytes mean the stored SET)

open $fh, '>', $flag or die $!;
print $fh "500";
close $fh;
my $crash = set_receiver(status_file => $flag);
add_set_endpoint('crash', $crash);
$from = ConnectorTest::deliv_last_position($node);
ConnectorTest::deliv_grants($node, 150);
my @crash_jtis = grant_jtis($from);
ok(ConnectorTest::deliv_wait_until(sub { $crash->entries >= 2 }), 'the first SET failing');
my $pid = ConnectorTest::deliv_worker_pid($node);
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true') or die;
unlink $flag;
ok(ConnectorTest::deliv_wait_until(sub { scalar(delivered_jtis($crash)) >= 40 }), 'delivering again after kill -9');
$node->stop('immediate');
$node->start;
$crash->wait_for(scalar(@crash_jtis), 120);
is_deeply([ delivered_jtis($crash) ], \@crash_jtis, 'after kill -9 and an immediate shutdown: every SET delivered, in order');
is_deeply([ body_mismatches($crash) ], [], 'every SET sent more than once carried the same bytes');
is_deeply([ unverified($crash) ], [], 'all verified');
wait_sql("SELECT cursor = " . ($from + 150) . " FROM connector.status WHERE endpoint = 'crash'", 'the cursor reached the end');

# --- a push stream's verification SET --------------------------------------

my $vrx = set_receiver(auth => 'Bearer push-token');
my $tok = $node->safe_psql('postgres', "SELECT connector.add_token('crm', 'okta-itp')");
my $cfg = encode_json({ delivery => { method => 'urn:ietf:rfc:8935', endpoint_url => $vrx->url,
	authorization_header => 'Bearer push-token' } });
my $sid = $node->safe_psql('postgres', qq{
BEGIN;
SELECT connector.scim_session('crm', '$tok') \\g /dev/null
SELECT connector.ssf_stream_create('crm', '$cfg', 'https://gw.example/ssf/crm')->>'stream_id';
COMMIT;});
$node->safe_psql('postgres', qq{
BEGIN;
SELECT connector.scim_session('crm', '$tok') \\g /dev/null
SELECT connector.ssf_verify('crm', '$sid', 'st-1');
COMMIT;});
$from = ConnectorTest::deliv_last_position($node);
$node->safe_psql('postgres', 'UPDATE "Crm App".users SET active = true WHERE id = 1');
my @v = $vrx->wait_for(2, 60);
is_deeply([ map { $_->{events}[0] } @v ],
	[ 'https://schemas.openid.net/secevent/ssf/event-type/verification',
	  'https://schemas.openid.net/secevent/risc/event-type/account-enabled' ],
	'a push stream gets its verification SET, then the events');
is_deeply([ map { [$_->{iss}, $_->{aud}] } @v ],
	[ [ 'https://gw.example/ssf/crm', 'okta-itp' ], [ 'https://gw.example/ssf/crm', 'okta-itp' ] ], 'the stream\'s iss and aud');
is_deeply([ unverified($vrx) ], [], 'verified, with the stream\'s authorization_header');
wait_sql("SELECT delivered = 2 FROM connector.status WHERE endpoint = 'ssf-$sid'", 'status counts both');

$_->stop for @receivers;
$wh->stop;
$node->stop;
done_testing();
