# changes() on a hot standby: it returns the events the primary has sealed
# and never fails because unsealed ones exist (sealing writes, which a standby
# refuses: 25006).  The primary runs no dispatcher here (connector.databases
# names no database), so committed events stay unsealed until a read-write
# changes() on the primary seals them: what the standby returns cannot depend
# on timing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $primary = ConnectorTest::node('primary', streaming => 1,
	conf => "connector.databases = 'none'\n");
$primary->safe_psql('postgres', ConnectorTest::crm_setup());
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

# Changes: "position:type" in position order, as a node returns them.
sub changes_on
{
	my ($node, $after) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT string_agg(position || ':' || (event->>'type'), ' ' ORDER BY position)"
		  . " FROM connector.changes('crm', $after, 1000)",
		on_error_stop => 1);
	return $rc == 0 ? $out : "ERROR: $err";
}

sub unsealed
{
	return $_[0]->safe_psql('postgres',
		'SELECT coalesce(sum(n), 0) FROM connector.outbox WHERE position IS NULL');
}

# two events sealed on the primary, two committed after them and not sealed
$primary->safe_psql('postgres', q{
SELECT connector.disable('crm', '2');
SELECT connector.grant('crm', '2', '1');
});
is(changes_on($primary, 0), '1:account.disabled 2:access.granted', 'the primary seals and returns two events');
$primary->safe_psql('postgres', q{
SELECT connector.enable('crm', '2');
SELECT connector.revoke('crm', '2', '1');
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is(unsealed($standby), '2', 'the standby holds two committed events that are not sealed');
my ($rc, $out, $err) = $standby->psql('postgres', 'SELECT connector._seal()');
like($err, qr/cannot execute SELECT FOR UPDATE in a read-only transaction|read-only transaction/,
	'sealing is refused on the standby (what changes() used to try)');
for my $try (1 .. 3)
{
	is(changes_on($standby, 0), '1:account.disabled 2:access.granted',
		"changes() on the standby returns the sealed events, without error (try $try)");
}
is(changes_on($standby, 2), '', 'after the last sealed position: nothing');
is($standby->safe_psql('postgres', q{
SELECT count(*) FROM connector.changes('crm', '1'::varchar)}), '1',
	'the position bound as a string works there too');
($rc, $out, $err) = $standby->psql('postgres', q{SELECT * FROM connector.changes('crm', -1)});
like($err, qr/position -1 is out of range/, 'bad arguments fail as on the primary');

# the primary seals the rest: the standby then returns them, at the same positions
is(changes_on($primary, 2), '3:account.enabled 4:access.revoked', 'a read-write changes() on the primary seals the rest');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is(changes_on($standby, 0), '1:account.disabled 2:access.granted 3:account.enabled 4:access.revoked',
	'the standby then returns every event, at the positions the primary gave');
is($standby->safe_psql('postgres', q{
SELECT string_agg(event->>'id', ' ' ORDER BY position) FROM connector.changes('crm', 0)}),
	$primary->safe_psql('postgres', q{
SELECT string_agg(event->>'id', ' ' ORDER BY position) FROM connector.changes('crm', 0)}),
	'with the same ids');

# a read-only transaction on the primary behaves the same way
$primary->safe_psql('postgres', q{SELECT connector.disable('crm', '1')});
is($primary->safe_psql('postgres', q{
SET default_transaction_read_only = on;
SELECT count(*) FROM connector.changes('crm', 0)}), '4',
	'a read-only session on the primary gets the sealed events only');
is(changes_on($primary, 4), '5:account.disabled', 'a read-write one seals the new event');

$standby->stop('fast');
$primary->stop('fast');
done_testing();
