# No application holds up another, and the dispatcher never exits in a loop.
# Application A ("crm") has its grants table locked by its owner, a \u0000 in
# a json column, and a damaged outbox row; meanwhile application B's events
# are delivered, changes('b') answers at once, connector.status says what is
# wrong with A, and the worker keeps its pid.  Once A's trouble ends, A
# catches up by itself.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use lib 'test/t';
use ConnectorTest;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $node = ConnectorTest::node('isolation');

# A: the CRM fixture with a json attribute; B: a small application of its own
my $crm = ConnectorTest::crm_setup();
$crm =~ s/SELECT connector\.register_app.*\z//s;
$node->safe_psql('postgres', $crm . q{
ALTER TABLE "Crm App".users ADD COLUMN profile json;
SELECT connector.register_app('crm',
	jsonb_set(pg_temp.crm_spec(), '{accounts,attributes}', '["email", "Department Name", "profile"]'));
CREATE SCHEMA b;
CREATE TABLE b.users (id int PRIMARY KEY, login text NOT NULL);
CREATE TABLE b.roles (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE b.user_roles (user_id int NOT NULL REFERENCES b.users, role_id int NOT NULL REFERENCES b.roles);
INSERT INTO b.users VALUES (1, 'x');
INSERT INTO b.roles VALUES (1, 'r');
SELECT connector.register_app('b', '{
	"accounts": {"table": "b.users", "id": "id", "name": "login"},
	"entitlements": {"table": "b.roles", "id": "id", "name": "name"},
	"grants": {"table": "b.user_roles", "account": "user_id", "entitlement": "role_id"}}');
});
my %rx = map { $_ => ConnectorTest::Receiver->start(secret => $secret) } qw(crm b);
for my $app (qw(crm b))
{
	$node->safe_psql('postgres',
		"SELECT connector.add_endpoint('$app', 'hook', '${\ $rx{$app}->url}', '$secret')");
}

# events of an application delivered to its receiver (2xx), decoded; the
# receiver's log holds bodies as characters, U+FFFD among them
my $json = JSON::PP->new;
sub delivered
{
	my ($app) = @_;
	my @events;
	for my $e ($rx{$app}->entries)
	{
		next unless defined $e->{status} && $e->{status} >= 200 && $e->{status} < 300;
		push @events, $json->decode($e->{body});
	}
	return @events;
}

# n more events of B, and wait (at most 15 s) until its receiver has them all
my $b_sent = 0;
sub b_delivers
{
	my ($n) = @_;
	$node->safe_psql('postgres', "INSERT INTO b.user_roles SELECT 1, 1 FROM generate_series(1, $n)");
	$b_sent += $n;
	return ConnectorTest::deliv_wait_until(sub { delivered('b') >= $b_sent }, 15);
}

# changes('b') with a 5 s statement timeout: [succeeded, seconds]
sub b_changes
{
	my $t0 = time;
	my ($rc) = $node->psql('postgres',
		"SET statement_timeout = '5s'; SELECT count(*) FROM connector.changes('b', 0, 100000)");
	return ($rc == 0, time - $t0);
}

# a column of connector.status for an application's endpoint
sub status
{
	my ($app, $col) = @_;
	return $node->safe_psql('postgres', "SELECT $col FROM connector.status WHERE app = '$app'");
}

$node->safe_psql('postgres', q{UPDATE "Crm App".users SET email = 'a@x' WHERE id = 1});
ok(b_delivers(1), 'B delivers');
ok(ConnectorTest::deliv_wait_until(sub { delivered('crm') >= 1 }, 15), 'A delivers');
my $pid = ConnectorTest::deliv_worker_pid($node);

# ---- A's owner locks its grants table, which expiry reads, and holds the lock
my $logstart = -s $node->logfile;
my $lock = $node->background_psql('postgres');
$lock->query_safe('BEGIN');
$lock->query_safe(q{LOCK TABLE "Crm App".user_roles IN ACCESS EXCLUSIVE MODE});
# a grant that has expired already: expiry revokes it once the lock is gone
$lock->query_safe(q{INSERT INTO "Crm App".user_roles VALUES (2, 1, now() - interval '1 hour')});

ok(b_delivers(3), 'lock on A: B still delivers');
my ($ok, $took) = b_changes();
ok($ok && $took < 3, sprintf('lock on A: changes(\'b\') answers at once (%.2f s)', $took));
ok(ConnectorTest::deliv_wait_until(sub { status('crm', 'app_error') =~ /lock timeout \(SQLSTATE 55P03\)/ }, 15),
	'lock on A: connector.status shows why A\'s expiry fails');
like(status('crm', 'app_error_since'), qr/^\d{4}-/, 'and since when');
is(status('b', "coalesce(app_error, 'none')"), 'none', 'B has no error');
$node->safe_psql('postgres', q{UPDATE "Crm App".users SET email = 'b@x' WHERE id = 1});
ok(ConnectorTest::deliv_wait_until(sub { delivered('crm') >= 2 }, 15),
	'lock on A: A\'s other events are still delivered');
ok(b_delivers(2), 'lock on A: B keeps delivering');
is(ConnectorTest::deliv_worker_pid($node), $pid, 'lock on A: the worker keeps its pid');
ok($node->log_contains(qr/WARNING:  connector dispatcher could not expire the grants of application "crm": canceling statement due to lock timeout/, $logstart),
	'lock on A: the server log says why');

$lock->query_safe('COMMIT');
$lock->quit;
ok(ConnectorTest::deliv_wait_until(sub {
		grep { $_->{type} eq 'access.revoked' && $_->{data}{origin}{via} eq 'expiry' } delivered('crm') }, 15),
	'lock released: A\'s expired grant is revoked and delivered');
ok($node->poll_query_until('postgres',
	"SELECT app_error IS NULL AND app_error_since IS NULL FROM connector.status WHERE app = 'crm'"),
	'lock released: the error is gone from connector.status');

# ---- \u0000 in A's json column, by direct DML and through the write API
my $crm_before = delivered('crm');
$node->safe_psql('postgres', q{UPDATE "Crm App".users SET profile = '{"x": "a\u0000b"}' WHERE id = 1});
$node->safe_psql('postgres', q{SELECT connector.update_account('crm', '2', '{"profile": "{\"y\": \"\\\\u0000\"}"}')});
ok(b_delivers(2), '\u0000 in A: B still delivers');
ok(ConnectorTest::deliv_wait_until(sub { delivered('crm') >= $crm_before + 2 }, 15),
	'\u0000 in A: A delivers both events');
my @p = map { $_->{data}{after}{profile} } grep { $_->{type} eq 'account.updated' } delivered('crm');
is_deeply([ @p[-2, -1] ], [ { x => "a\x{fffd}b" }, { y => "\x{fffd}" } ], '\u0000 arrives as U+FFFD');
($ok) = b_changes();
ok($ok, '\u0000 in A: changes(\'b\') works');
is(scalar($node->psql('postgres', q{SELECT count(*) FROM connector.changes('crm', 0, 100000)})), 0,
	'\u0000 in A: so does changes(\'crm\')');
is(ConnectorTest::deliv_worker_pid($node), $pid, '\u0000 in A: the worker keeps its pid');

# ---- a damaged outbox row of A (as a bad restore or an older version could
# leave): A's endpoint stops, with the reason in status; B goes on
$logstart = -s $node->logfile;
$crm_before = delivered('crm');
$node->safe_psql('postgres', q{
INSERT INTO connector.outbox (txid, seq, n, app, occurred_at, origin, events)
VALUES (pg_current_xact_id(), 0, 1, 'crm', now(), '["direct", null, null, null, null]',
		'[[2, ["1", "alice", "human"], null, {"damaged": "\u0000"}]]');
});
$node->safe_psql('postgres', q{UPDATE "Crm App".users SET email = 'c@x' WHERE id = 1});
ok(ConnectorTest::deliv_wait_until(sub { status('crm', 'dispatch_error') =~ /\(SQLSTATE 22P05\)/ }, 15),
	'damaged row: connector.status shows why A\'s endpoint stopped');
ok(b_delivers(3), 'damaged row: B still delivers');
($ok) = b_changes();
ok($ok, 'damaged row: changes(\'b\') works');
is(scalar(delivered('crm')), $crm_before, 'damaged row: A\'s endpoint waits, in order');
is(ConnectorTest::deliv_worker_pid($node), $pid, 'damaged row: the worker keeps its pid');
ok($node->log_contains(qr/WARNING:  connector dispatcher cannot build the messages of endpoint "hook" of application "crm": unsupported Unicode escape sequence/, $logstart),
	'damaged row: the server log says why');

# repaired, A's endpoint catches up by itself, in order
$node->safe_psql('postgres',
	q{UPDATE connector.outbox SET events = replace(events, '\u0000', 'repaired') WHERE app = 'crm' AND events LIKE '%damaged%'});
ok(ConnectorTest::deliv_wait_until(sub { delivered('crm') >= $crm_before + 2 }, 15),
	'repaired: A\'s endpoint catches up');
is_deeply([ map { $_->{data}{after}{damaged} // $_->{data}{after}{email} } (delivered('crm'))[-2, -1] ],
	[ 'repaired', 'c@x' ], 'in order');
ok($node->poll_query_until('postgres',
	"SELECT dispatch_error IS NULL FROM connector.status WHERE app = 'crm'"),
	'repaired: the error is gone from connector.status');
ok($node->log_contains(qr/LOG:  connector dispatcher builds the messages of endpoint "hook" of application "crm" again/, $logstart),
	'repaired: the server log says so');
is(ConnectorTest::deliv_worker_pid($node), $pid, 'the worker kept its pid throughout');
is(scalar(grep { !$_->{verified} } map { $_->entries } values %rx), 0, 'every request verified');

$_->stop for values %rx;
$node->stop('fast');
done_testing();
