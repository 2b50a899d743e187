# Load: 16 concurrent sessions mix platform calls (grant, revoke, disable,
# enable) and direct DML (membership INSERT/DELETE, status UPDATE) on 200
# accounts and 20 entitlements for CONNECTOR_LOAD_SECONDS (default 30) while
# delivery runs.  Afterwards the delivered events are, one to one, the events
# of changes(); replaying them reproduces the final tables exactly; and no
# session saw an internal error, a deadlock or any other unexpected SQLSTATE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use lib 'test/t';
use ConnectorTest;

my $seconds = $ENV{CONNECTOR_LOAD_SECONDS} // 30;
my $sessions = $ENV{CONNECTOR_LOAD_SESSIONS} // 16;
my ($accounts, $roles) = (200, 20);
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $rx = ConnectorTest::Receiver->start(secret => $secret);
my $node = ConnectorTest::node('load', conf => "max_connections = 40\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', qq{
INSERT INTO "Crm App".users (id, login) SELECT g, 'user-' || g FROM generate_series(1000, 999 + $accounts) g;
INSERT INTO "Crm App".roles (id, name) SELECT g, 'role-' || g FROM generate_series(100, 99 + $roles) g;
});
$node->safe_psql('postgres', qq{
SELECT connector.add_endpoint('crm', 'hook', '${\ $rx->url}', '$secret', '{"batch_size": 100}')});
my $start = $node->safe_psql('postgres', 'SELECT cursor FROM connector.endpoint');

# one script per session: random statements, each its own transaction, with
# a deadline check every few statements
my $deadline = $node->safe_psql('postgres', "SELECT clock_timestamp() + interval '$seconds s'");
my $dir = PostgreSQL::Test::Utils::tempdir();
my @runs;
for my $s (1 .. $sessions)
{
	srand(1000 + $s);
	open my $fh, '>', "$dir/s$s.sql" or die $!;
	print $fh "\\set VERBOSITY verbose\n";
	for my $i (1 .. 20000)
	{
		my $a = 1000 + int(rand($accounts));
		my $r = 100 + int(rand($roles));
		my $k = int(rand(9));
		print $fh (
			"SELECT connector.grant('crm', '$a', '$r');\n",
			"SELECT connector.revoke('crm', '$a', '$r');\n",
			"SELECT connector.disable('crm', '$a');\n",
			"SELECT connector.enable('crm', '$a');\n",
			"INSERT INTO \"Crm App\".user_roles VALUES ($a, $r, NULL);\n",
			"DELETE FROM \"Crm App\".user_roles WHERE user_id = $a AND role_id = $r;\n",
			"UPDATE \"Crm App\".users SET active = NOT active WHERE id = $a;\n",
			"SELECT connector.apply('crm', '[{\"op\": \"grant\", \"account\": \"$a\", \"entitlement\": \"$r\"},"
			  . " {\"op\": \"revoke\", \"account\": \"$a\", \"entitlement\": \"" . (100 + ($r + 1 - 100) % $roles) . "\"}]');\n",
			"SELECT count(*) FROM connector.changes('crm', greatest(0, (SELECT last_position - 50 FROM connector.seal_state)), 100);\n",
		)[$k];
		print $fh "SELECT clock_timestamp() > '$deadline' AS done \\gset\n\\if :done\n\\q\n\\endif\n"
		  if $i % 5 == 0;
	}
	close $fh;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f', "$dir/s$s.sql" ],
		'>', \$out, '2>', \$err);
	push @runs, { h => $h, out => \$out, err => \$err };
}
$_->{h}->finish for @runs;

my (%states, %messages);
for my $r (@runs)
{
	while (${ $r->{err} } =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/g)
	{
		$states{$1}++;
		$messages{"$1: $2"} //= 1;
	}
}
note "error: $_" for grep { defined } (sort keys %messages)[0 .. 9];
note 'error SQLSTATEs seen: ' . (join(', ', map { "$_ x$states{$_}" } sort keys %states) || 'none');
my @bad = grep { !/^(40001)$/ } keys %states;
is_deeply(\@bad, [], 'no session saw an internal error, a deadlock or any unexpected error');

my $last = $node->safe_psql('postgres', 'SELECT connector._seal(); SELECT last_position FROM connector.seal_state');
$last = (split /\n/, $last)[-1];
my $total = $last - $start;
note "events committed during the load: $total in $seconds s";
cmp_ok($total, '>', 1000, 'the load produced events');
ok($node->poll_query_until('postgres', "SELECT delivered >= $total FROM connector.endpoint"),
	'delivery catches up');

my @changes = grep { $_->[0] > $start } ConnectorTest::reliab_changes($node, 'crm');
my @got = ConnectorTest::reliab_received_events($rx);
my (%want, %seen);
$want{ $_->[1] } = $_->[2] for @changes;
$seen{ $_->{id} }++ for @got;
is(scalar @changes, $total, 'changes() lists every event');
my @missing = grep { !$seen{$_} } keys %want;
my @extra = grep { !$want{$_} } keys %seen;
is(scalar @missing, 0, 'every event of changes() was delivered');
is(scalar @extra, 0, 'every delivered event is in changes()');
note 'delivered more than once: ' . scalar(grep { $seen{$_} > 1 } keys %seen);
my %first;
my @pos = map { $_->{data}{position} } grep { !$first{ $_->{id} }++ } @got;
my @unordered = grep { $pos[$_] <= $pos[ $_ - 1 ] } 1 .. $#pos;
is(scalar @unordered, 0, 'delivered in position order');

# replay the membership and status events over the state before the load
my (%count, %active);
for my $c (@changes)
{
	my $e = decode_json($c->[2]);
	my $d = $e->{data};
	my $a = $d->{account}{id};
	if ($e->{type} eq 'access.granted')
	{
		$count{"$a/$d->{entitlement}{id}"}++;
	}
	elsif ($e->{type} eq 'access.revoked')
	{
		$count{"$a/$d->{entitlement}{id}"}--;
	}
	elsif ($e->{type} eq 'account.disabled')
	{
		$active{$a} = 'f';
	}
	elsif ($e->{type} eq 'account.enabled')
	{
		$active{$a} = 't';
	}
}
my %final;
for (split /\n/, $node->safe_psql('postgres',
	q{SELECT user_id || '/' || role_id, count(*) FROM "Crm App".user_roles WHERE user_id >= 1000 GROUP BY 1}))
{
	my ($k, $n) = split /\|/;
	$final{$k} = $n;
}
delete $count{$_} for grep { $count{$_} == 0 } keys %count;
is_deeply(\%count, \%final, 'replaying access events per (account, entitlement) gives the final memberships');
my %final_active = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	q{SELECT id, active FROM "Crm App".users WHERE id >= 1000});
my @wrong = grep { $final_active{$_} ne $active{$_} } grep { exists $active{$_} } keys %final_active;
my @untouched_changed = grep { !exists $active{$_} && $final_active{$_} ne 't' } keys %final_active;
is(scalar(@wrong) + scalar(@untouched_changed), 0, 'replaying status events gives the final account status');
is_deeply([ ConnectorTest::reliab_outbox_problems($node) ], [], 'the outbox is intact');
ok(!$node->log_contains(qr/"connector dispatcher" \(PID \d+\) exited with exit code 1/),
	'the dispatcher never failed during the load');
my @unverified = grep { !$_->{verified} } $rx->entries;
is(scalar @unverified, 0, 'every request was signed correctly');

$node->stop('fast');
$rx->stop;
done_testing();
