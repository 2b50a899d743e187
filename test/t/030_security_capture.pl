# Security suite (issue 13, attack 2): a table owner becomes superuser
# through capture.  Capture reads a mapped table's status type once per
# backend when it builds the table's map: with a status column of the owner's
# hostile domain, the application's first write in a new backend must run
# the domain's CHECK as the owner at most, never as a superuser.  The owner
# cannot retype the mapped status column to such a domain either.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('sec_capture');
$node->safe_psql('postgres', slurp_file('test/security/fixtures/hostile.sql'));
my $dispatcher = ConnectorTest::deliv_worker_pid($node);
$node->safe_psql('postgres', q{
ALTER ROLE regress_owner LOGIN;
ALTER ROLE regress_app LOGIN;
GRANT connector_admin TO regress_owner;
SET ROLE regress_owner;
CREATE DOMAIN crm.state_d AS text CHECK (VALUE IN ('on', 'off') AND crm.evil('status domain check'));
CREATE TABLE crm.staff (id int PRIMARY KEY, name text NOT NULL, state crm.state_d NOT NULL);
INSERT INTO crm.staff VALUES (1, 'ann', 'on'), (2, 'ben', 'off');
GRANT SELECT, UPDATE ON crm.staff TO regress_app;
SELECT connector.register_app('staff', '{"accounts": {"table": "crm.staff", "id": "id",
	"name": "name", "status": {"column": "state", "enabled": "on", "disabled": "off"}}}');
RESET ROLE;
REVOKE connector_admin FROM regress_owner;
});

# Who ran the hostile code since the last look, and forget it.
sub evil_seen
{
	my $seen = $node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(DISTINCT ran_as || CASE WHEN is_super THEN ' (superuser)' ELSE '' END, ', '), 'nothing')
		  FROM crm.evil_log});
	$node->safe_psql('postgres', 'DELETE FROM crm.evil_log; ALTER ROLE regress_owner NOSUPERUSER');
	return $seen;
}
sub owner_is_super
{
	return $node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'});
}

my $super = owner_is_super();
my $seen = evil_seen();
like($seen, qr/^(nothing|regress_owner)$/,
	'register_app by the owner ran its domain check as the owner at most, never as a superuser');
is($super, 'f', 'register_app by the owner: regress_owner did not become a superuser');

# A new backend of the application: its first write builds the map.
$node->safe_psql('postgres', q{UPDATE crm.staff SET name = 'ann b.' WHERE id = 1},
	extra_params => [ '-U', 'regress_app' ]);
is($node->safe_psql('postgres', q{SELECT string_agg(event->>'type', ', ') FROM connector.changes('staff')}),
	'account.updated', 'the application\'s write is captured');
$super = owner_is_super();
like(evil_seen(), qr/^(nothing|regress_owner)$/,
	'capture in a new backend ran the owner\'s domain check as the owner at most, never as a superuser');
is($super, 'f', 'capture in a new backend: regress_owner did not become a superuser');

# The original attack: the owner retypes the mapped status column of crm to
# its hostile domain, then the application writes in a new backend.
my ($stdout, $stderr);
$node->psql('postgres', q{
CREATE DOMAIN crm.status_d AS crm.status_t CHECK (crm.evil('status domain check'));
ALTER TABLE crm.users ALTER COLUMN status TYPE crm.status_d;
}, extra_params => [ '-U', 'regress_owner', '-v', 'VERBOSITY=verbose' ],
	stdout => \$stdout, stderr => \$stderr, on_error_stop => 1);
like($stderr, qr/ERROR:  42501:/, 'the owner cannot retype the mapped status column to its domain');
evil_seen();
$node->safe_psql('postgres', q{UPDATE crm.users SET email = 'alice@new.example.com' WHERE id = 1},
	extra_params => [ '-U', 'regress_app' ]);
$super = owner_is_super();
unlike(evil_seen(), qr/superuser/,
	'the application\'s write in a new backend ran none of the owner\'s code as a superuser');
is($super, 'f', 'the application\'s write in a new backend: regress_owner did not become a superuser');

is(ConnectorTest::deliv_worker_pid($node), $dispatcher, 'the dispatcher is the same process');
ok(!$node->log_contains('terminated by signal'), 'no process crashed');

$node->stop('fast');
done_testing();
