# The SSRF guard at connect time, beyond loopback names (005): every kind of
# address add_endpoint refuses is refused by the dispatcher too when it is
# the address the worker would connect to, including IPv6 forms that carry an
# IPv4 address (mapped, IPv4-translated, IPv4-compatible, NAT64, 6to4,
# Teredo) and the special IPv4 ranges beyond the private ones.  Proxy
# variables in the server's environment are ignored, so the guard judges the
# target and not a proxy.  What the guard reports names no address.
#
# The addresses are written as literals, added while
# connector.allow_private_targets is on (add_endpoint would refuse them
# otherwise) and delivered to once it is off: the same addresses a host name
# could resolve to, which a test cannot arrange without /etc/hosts.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $guard_error = 'refused by the SSRF guard: the endpoint\'s address is not allowed '
  . '(loopback, private or reserved range; connector.allow_private_targets is off)';
my $certs = tempdir(CLEANUP => 1);
system('test/receiver/make-certs.sh', $certs) == 0 or die 'make-certs.sh failed';

# A listener standing for a proxy on loopback: the kernel completes the
# connections made to it, nothing answers them.
my $proxy = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Listen => 16, Proto => 'tcp') or die "cannot listen: $!";
$proxy->blocking(0);
my $proxy_url = 'http://127.0.0.1:' . $proxy->sockport;

# Connections the proxy listener was sent so far.
my $proxied = 0;
sub proxied
{
	while (my $c = $proxy->accept)
	{
		$proxied++;
		close $c;
	}
	return $proxied;
}

# The postmaster, and so the dispatcher, starts with every proxy variable
# libcurl reads pointing at the listener.
my $node;
{
	local $ENV{http_proxy} = $proxy_url;
	local $ENV{https_proxy} = $proxy_url;
	local $ENV{HTTPS_PROXY} = $proxy_url;
	local $ENV{all_proxy} = $proxy_url;
	local $ENV{ALL_PROXY} = $proxy_url;
	delete local $ENV{no_proxy};
	delete local $ENV{NO_PROXY};
	$node = ConnectorTest::node('ssrf', conf => "connector.ca_file = '$certs/ca.crt'\n");
}
$node->safe_psql('postgres', ConnectorTest::crm_setup());

ok(ConnectorTest::deliv_worker_pid($node), 'the dispatcher runs');
# Workers inherit the postmaster's environment.  (Their own
# /proc/PID/environ is overwritten by the process title.)
open my $pidf, '<', $node->data_dir . '/postmaster.pid' or die "postmaster.pid: $!";
my $postmaster = <$pidf>;
close $pidf;
chomp $postmaster;
open my $envf, '<', "/proc/$postmaster/environ" or die "/proc/$postmaster/environ: $!";
my %env = map { split /=/, $_, 2 } split /\0/, do { local $/; <$envf> };
close $envf;
is_deeply([ map { $env{$_} } qw(http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY) ],
	[ ($proxy_url) x 5 ], 'the server runs with the proxy variables in its environment');

my $tls = ConnectorTest::Receiver->start(secret => $secret,
	tls_cert => "$certs/server.crt", tls_key => "$certs/server.key");
my $plain = ConnectorTest::Receiver->start(secret => $secret);
ConnectorTest::deliv_add_endpoint($node, 'tls', $tls->url('localhost'), $secret);
ConnectorTest::deliv_add_endpoint($node, 'plain', $plain->url, $secret);
ConnectorTest::deliv_grants($node, 1);
my @want = ConnectorTest::deliv_event_ids($node);
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($tls) >= 1 }, 30),
	'proxy variables: https:// is delivered to the receiver itself');
is_deeply([ ConnectorTest::deliv_delivered_ids($tls) ], \@want, 'proxy variables: the https:// event verifies');
ok(ConnectorTest::deliv_wait_until(sub { ConnectorTest::deliv_delivered_ids($plain) >= 1 }, 30),
	'proxy variables: http:// is delivered to the receiver itself');
is(proxied(), 0, 'proxy variables: nothing was sent to the proxy');

# Every special range, written so that the connection, were it made, would
# go to the receiver where a route exists (loopback carried in the address)
# or out of this host.
my $port = $tls->{port};
my %target = (
	mapped => '[::ffff:127.0.0.1]',
	mapped_private => '[::ffff:10.0.0.1]',
	translated => '[::ffff:0:7f00:1]',
	compatible => '[::7f00:1]',
	nat64 => '[64:ff9b::7f00:1]',
	nat64_metadata => '[64:ff9b::a9fe:a9fe]',
	nat64_local => '[64:ff9b:1::7f00:1]',
	sixtofour => '[2002:7f00:1::1]',
	sixtofour_private => '[2002:c0a8:101::1]',
	teredo => '[2001:0:4136:e378:8000:63bf:80ff:fffe]',
	documentation6 => '[2001:db8::1]',
	documentation6_new => '[3fff::1]',
	discard => '[100::1]',
	site_local => '[fec0::1]',
	reserved6 => '[4000::1]',
	benchmarking => '198.18.0.1',
	documentation4 => '192.0.2.1',
	ietf4 => '192.0.0.8',
	cgnat => '100.64.0.1',
	broadcast => '255.255.255.255',
);
ConnectorTest::deliv_add_endpoint($node, "r_$_", "https://$target{$_}:$port/hook", $secret)
  for sort keys %target;

$node->safe_psql('postgres', 'ALTER SYSTEM SET connector.allow_private_targets = off');
$node->reload;
ok($node->poll_query_until('postgres', "SELECT current_setting('connector.allow_private_targets') = 'off'"),
	'the guard is on');
sleep 1;		# the worker reads the reload at its next round
ConnectorTest::deliv_grants($node, 1);

my $n = scalar keys %target;
ok(ConnectorTest::deliv_wait_until(sub {
	$node->safe_psql('postgres', "SELECT count(*) FROM connector.status
		WHERE (endpoint LIKE 'r\\_%' OR endpoint = 'tls') AND last_error = '" . ($guard_error =~ s/'/''/gr) . "'") == $n + 1 }, 30),
	'every guarded address is refused at connect time');
for my $k (sort keys %target)
{
	is(ConnectorTest::deliv_status($node, "r_$k", 'last_error'), $guard_error,
		"$k $target{$k}: refused by the SSRF guard");
}
my $tls_error = ConnectorTest::deliv_status($node, 'tls', 'last_error');
is($tls_error, $guard_error, 'localhost: refused by the SSRF guard');
unlike($tls_error, qr/127\.0\.0\.1|::1/, 'localhost: the error does not show the address it resolved to');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM connector.status WHERE endpoint LIKE 'r\\_%' AND delivered > 0"), 0,
	'no guarded endpoint counts a delivery');
is(ConnectorTest::deliv_count($tls), 1, 'the receiver got nothing after the guard went on');
is(proxied(), 0, 'nothing was sent to the proxy');

$_->stop for ($tls, $plain);
$node->stop('fast');
done_testing();
