# Real TLS with a test CA (test/receiver/make-certs.sh): the certificate chain
# and the host name are verified.  The SSRF guard holds at connect time: a
# host name that resolves to loopback is never connected to once
# connector.allow_private_targets is off, even over a kept-alive connection.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $certs = tempdir(CLEANUP => 1);
my $other = tempdir(CLEANUP => 1);
system('test/receiver/make-certs.sh', $certs) == 0 or die 'make-certs.sh failed';
system('test/receiver/make-certs.sh', $other) == 0 or die 'make-certs.sh failed';

my $node = ConnectorTest::node('tls', conf => "connector.ca_file = '$certs/ca.crt'\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());

my %rx = (
	good => ConnectorTest::Receiver->start(secret => $secret,
		tls_cert => "$certs/server.crt", tls_key => "$certs/server.key"),
	wronghost => ConnectorTest::Receiver->start(secret => $secret,
		tls_cert => "$certs/wrong.crt", tls_key => "$certs/wrong.key"),
	unknownca => ConnectorTest::Receiver->start(secret => $secret,
		tls_cert => "$other/server.crt", tls_key => "$other/server.key"),
);
# localhost passes add_endpoint only while private targets are allowed
ConnectorTest::deliv_add_endpoint($node, $_, $rx{$_}->url('localhost'), $secret) for sort keys %rx;
like($rx{good}->url('localhost'), qr{^https://localhost:\d+/hook$}, 'endpoints are https://localhost:PORT');

ConnectorTest::deliv_grants($node, 1);
my @want = ConnectorTest::deliv_event_ids($node);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{good}) >= 1 }, 30),
	'TLS: delivered to a certificate of the configured CA');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{good}) ], \@want, 'TLS: the event arrives and verifies');

ok($node->poll_query_until('postgres',
	"SELECT consecutive_failures >= 2 FROM connector.status WHERE endpoint = 'wronghost'"),
	'wrong host name: retried');
like(ConnectorTest::deliv_status($node, 'wronghost', 'last_error'), qr/certificate|host name/i,
	'wrong host name: last_error says why');
is(ConnectorTest::deliv_count($rx{wronghost}), 0, 'wrong host name: no request got through');
ok($node->poll_query_until('postgres',
	"SELECT consecutive_failures >= 2 FROM connector.status WHERE endpoint = 'unknownca'"),
	'unknown CA: retried');
like(ConnectorTest::deliv_status($node, 'unknownca', 'last_error'), qr/certificate|issuer/i,
	'unknown CA: last_error says why');
is(ConnectorTest::deliv_count($rx{unknownca}), 0, 'unknown CA: no request got through');
is(ConnectorTest::deliv_status($node, 'wronghost', 'delivered') + ConnectorTest::deliv_status($node, 'unknownca', 'delivered'),
	0, 'neither counts a delivery');

# The guard goes on: the endpoint added as https://localhost now resolves to a
# refused address.  The connection kept alive from the first delivery must not
# be reused either.
$node->safe_psql('postgres', 'ALTER SYSTEM SET connector.allow_private_targets = off');
$node->reload;
ok($node->poll_query_until('postgres', "SELECT current_setting('connector.allow_private_targets') = 'off'"),
	'the guard is on');
my ($code, $out, $err) = $node->psql('postgres',
	"SELECT connector.add_endpoint('crm', 'again', 'https://localhost:1/hook', '$secret')");
like($err, qr/is a loopback, private or link-local address/, 'add_endpoint now refuses localhost');
sleep 1;		# the worker reads the reload at its next round
ConnectorTest::deliv_grants($node, 1);
ok($node->poll_query_until('postgres',
	"SELECT last_error ~ 'SSRF guard' AND consecutive_failures >= 2 FROM connector.status WHERE endpoint = 'good'"),
	'SSRF: the resolved address is refused at connect time');
my $guard_error = ConnectorTest::deliv_status($node, 'good', 'last_error');
like($guard_error, qr/address is not allowed \(loopback, private or reserved range; connector\.allow_private_targets is off\)/,
	'SSRF: last_error says why and names the setting');
unlike($guard_error, qr/127\.0\.0\.1|::1/, 'SSRF: last_error does not show the address localhost resolved to');
is(ConnectorTest::deliv_count($rx{good}), 1, 'SSRF: the receiver got no request');

# Allowed again: the waiting event goes out, nothing lost.
$node->safe_psql('postgres', 'ALTER SYSTEM SET connector.allow_private_targets = on');
$node->reload;
@want = ConnectorTest::deliv_event_ids($node);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($rx{good}) >= 2 }, 30),
	'allowed again: delivery resumes');
is_deeply([ ConnectorTest::deliv_delivered_ids($rx{good}) ], \@want, 'allowed again: nothing lost');

$_->stop for values %rx;
$node->stop('fast');
done_testing();
