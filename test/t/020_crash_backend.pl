# A backend killed with SIGKILL in the middle of a platform call: the
# postmaster resets the cluster (every process, the dispatcher included, in
# the middle of delivering); afterwards nothing of the crashed transactions
# exists anywhere, every committed event is delivered with its id and its
# exact body, and the outbox goes on sealing with no gap and no duplicate.
#
# Markers make "the crashed transaction's events" checkable without relying
# on xids (an xid whose WAL was never flushed may be handed out again):
# entitlement 97 is only touched by a rolled-back transaction, 98 by the
# apply() killed while it runs, 99 by the transaction killed while paused;
# committed work never touches them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use JSON::PP;
use lib 'test/t';
use ConnectorTest;

my $accounts = $ENV{CONNECTOR_CRASH_ACCOUNTS} // 4000;
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
# a slow receiver: messages are in flight when the cluster resets
my $rx = ConnectorTest::Receiver->start(secret => $secret, extra => [ '--delay', '0.02' ]);
my $node = ConnectorTest::node('crash', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', qq{
INSERT INTO "Crm App".roles VALUES (97, 'rolled-back-marker', false, NULL),
	(98, 'mid-apply-marker', false, NULL), (99, 'paused-marker', true, NULL);
INSERT INTO "Crm App".users (id, login) SELECT g, 'user-' || g FROM generate_series(1000, 999 + $accounts) g;
});
$node->safe_psql('postgres', qq{
SELECT connector.add_endpoint('crm', 'hook', '${\ $rx->url}', '$secret');
});
# the endpoint starts at the end of the stream: it gets what follows
my $start = $node->safe_psql('postgres', 'SELECT cursor FROM connector.endpoint');
cmp_ok($start, '>=', $accounts, "the setup's events come before the endpoint's start ($start)");
my $ops = sub {
	my ($role) = @_;
	return qq{(SELECT jsonb_agg(jsonb_build_object('op', 'grant', 'account', id::text, 'entitlement', '$role'))
	  FROM "Crm App".users WHERE id >= 2000)};
};

# a rolled-back transaction
$node->safe_psql('postgres', q{
BEGIN;
SELECT connector.grant('crm', '1', '97');
INSERT INTO "Crm App".user_roles SELECT id, 97, NULL FROM "Crm App".users;
SELECT connector._flush();
ROLLBACK;
});

# A: a transaction paused after a platform call and direct DML, its events
# already written to the outbox (more than the 8 MB buffer, and flushed)
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
my $pid_a = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe("SELECT connector.apply('crm', ${\ $ops->(99)})");
$bg->query_safe(q{INSERT INTO "Crm App".user_roles SELECT id, 99, NULL FROM "Crm App".users});
# (committed work below keeps to accounts 1000..1999, which this one leaves unlocked)
$bg->query_safe(q{UPDATE "Crm App".users SET "Department Name" = 'paused' WHERE id >= 2000});
$bg->query_safe('SELECT connector._flush()');
my $unsealed = $bg->query_safe('SELECT sum(n) FROM connector.outbox WHERE position IS NULL');
cmp_ok($unsealed, '>=', $accounts, "the paused transaction wrote its events to the outbox ($unsealed)");

# committed work while it waits, delivered while it waits
$node->safe_psql('postgres', q{
SELECT connector.grant('crm', id::text, '2') FROM "Crm App".users WHERE id BETWEEN 1000 AND 1099;
INSERT INTO "Crm App".user_roles SELECT id, 1, NULL FROM "Crm App".users WHERE id BETWEEN 1100 AND 1199;
});
my $committed_before = $node->safe_psql('postgres', q{SELECT count(*) FROM connector.changes('crm', 0, 100000)});
my @got = $rx->wait_for(50, 60);
cmp_ok(scalar @got, '>=', 50, 'delivery goes on while the transaction is paused');

$bg->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(3600);\n");
my $logstart = -s $node->logfile;
kill 'KILL', $pid_a;
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'no restart after the crash';
ok($node->log_contains('terminated by signal 9', $logstart), 'the backend was killed by SIGKILL');
ok($node->log_contains('all server processes terminated; reinitializing', $logstart),
	'the postmaster reset the cluster (crash recovery)');
eval { $bg->quit };

# B: an apply() killed while it runs, after it has written rows
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'")
  or die 'no dispatcher after the reset';
$bg = $node->background_psql('postgres');
my $pid_b = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, "\\echo started\nSELECT connector.apply('crm', ${\ $ops->(98)} || ${\ $ops->(98)}) IS NULL;\n");
# wait until it holds an xid: it has written
$node->poll_query_until('postgres',
	"SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $pid_b")
  or die 'apply() never wrote';
usleep(200_000);
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid_b"), 'active',
	'apply() is still running when it is killed');
$logstart = -s $node->logfile;
kill 'KILL', $pid_b;
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'no restart after the second crash';
ok($node->log_contains('all server processes terminated; reinitializing', $logstart),
	'the second crash reset the cluster too');
eval { $bg->quit };

# committed work after the crashes
$node->safe_psql('postgres', q{
SELECT connector.revoke('crm', id::text, '2') FROM "Crm App".users WHERE id BETWEEN 1000 AND 1049;
DELETE FROM "Crm App".user_roles WHERE user_id BETWEEN 1100 AND 1149 AND role_id = 1;
SELECT connector.disable('crm', '1000');
});

my @changes = ConnectorTest::reliab_changes($node, 'crm');
my $expected = $committed_before + 50 + 50 + 1;
is(scalar @changes, $expected, "changes() lists exactly the committed events ($expected)");
my @marked = grep {
	my $d = JSON::PP::decode_json($_->[2])->{data};
	($d->{entitlement}{id} // '') =~ /^9[789]$/ && $_->[2] !~ /"entitlement.created"/
	  or (($d->{after} // {})->{'Department Name'} // '') eq 'paused'
} @changes;
is(scalar @marked, 0, 'no event of the rolled-back or crashed transactions in changes()');
my @pos = map { $_->[0] } @changes;
is_deeply(\@pos, [ 1 .. scalar @changes ], 'positions are 1..n: strictly increasing, no gap, no duplicate');
my %ids;
$ids{ $_->[1] }++ for @changes;
is(scalar keys %ids, scalar @changes, 'event ids are unique');
is_deeply([ ConnectorTest::reliab_outbox_problems($node) ], [], 'the outbox is intact');

# everything committed reaches the receiver, with the same id and body
my %want = map { $_->[1] => $_->[2] } grep { $_->[0] > $start } @changes;
my $deadline = time + 120;
my %seen;
while (time < $deadline)
{
	%seen = ();
	for my $e ($rx->entries)
	{
		next unless defined $e->{status} && $e->{status} == 200;
		push @{ $seen{ $e->{headers}{'webhook-id'} } }, $e->{body};
	}
	last if keys %seen >= keys %want;
	usleep(200_000);
}
my @missing = grep { !$seen{$_} } keys %want;
is(scalar @missing, 0, 'every committed event was delivered (' . scalar(keys %want) . ')') or diag "missing: @missing[0 .. 4]";
my @extra = grep { !$want{$_} } keys %seen;
is(scalar @extra, 0, 'nothing else was delivered (no event of a crashed transaction)')
  or diag "extra: @extra[0 .. 4]";
my @differ = grep { my $id = $_; grep { $_ ne $want{$id} } @{ $seen{$id} } } grep { $want{$_} } keys %seen;
is(scalar @differ, 0, 'every delivery of an event, retries included, carries the body of changes()');
my @bad = grep { !$_->{verified} } $rx->entries;
is(scalar @bad, 0, 'every request was signed correctly');
my $redelivered = grep { @{ $seen{$_} } > 1 } keys %seen;
note "events: " . scalar(@changes) . ", delivered more than once (at least once): $redelivered";

$node->stop('fast');
$rx->stop;
done_testing();
