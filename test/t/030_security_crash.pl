# Security suite (issue 13, attack 6): no crash, whatever the DDL.  With a
# text accounts id and a text grants account column, a superuser retypes the
# grants column to int; the next insert into the grants table must neither
# crash the backend (and with it every connection) nor fail with an internal
# error: it succeeds with its event, or fails with a clear error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

my $node = ConnectorTest::node('sec_crash', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
CREATE SCHEMA txt;
CREATE TABLE txt.accounts (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE txt.grants (user_id text NOT NULL, role text NOT NULL);
INSERT INTO txt.accounts VALUES ('a', 'ann'), ('0', 'zero');
SELECT connector.register_app('txt', '{"accounts": {"table": "txt.accounts", "id": "id", "name": "name"},
	"grants": {"table": "txt.grants", "account": "user_id", "entitlement": "role"}}');
});
my $dispatcher = ConnectorTest::deliv_worker_pid($node);

# One session: a write (the table's map is cached), the retype, a write.
my ($stdout, $stderr);
$node->psql('postgres', q{
INSERT INTO txt.grants VALUES ('a', 'r1');
ALTER TABLE txt.grants ALTER COLUMN user_id TYPE int USING 0;
INSERT INTO txt.grants VALUES (0, 'r2');
SELECT 'survived';
}, extra_params => [ '-v', 'VERBOSITY=verbose' ], stdout => \$stdout, stderr => \$stderr, on_error_stop => 0);
like($stdout, qr/survived/, 'the session survived the insert after the retype');
unlike($stderr, qr/server closed the connection|terminated abnormally/, 'the backend did not die');
unlike($stderr, qr/ERROR:  XX/, 'no internal error');

# Wait out a crash recovery, if any, before looking.
$node->poll_query_until('postgres', 'SELECT true');
my $insert_failed = $stderr =~ /INSERT INTO txt.grants VALUES \(0, 'r2'\)|ERROR:  (?!XX)[0-9A-Z]{5}:/;
my $events = $node->safe_psql('postgres', q{
	SELECT count(*) FROM connector.changes('txt') WHERE event->>'type' = 'access.granted'
	   AND event #>> '{data,account,id}' = '0' AND event #>> '{data,entitlement,id}' = 'r2'});
my $rows = $node->safe_psql('postgres', q{SELECT count(*) FROM txt.grants WHERE role = 'r2'});
ok(($rows eq '1' && $events eq '1') || ($rows eq '0' && $insert_failed && $stderr !~ /ERROR:  XX/),
	"the insert either succeeded with its event or failed with a clear error (rows $rows, events $events)");

# A new session writes again.
$node->psql('postgres', q{
INSERT INTO txt.grants VALUES (0, 'r3');
SELECT 'survived';
}, extra_params => [ '-v', 'VERBOSITY=verbose' ], stdout => \$stdout, stderr => \$stderr, on_error_stop => 0);
like($stdout, qr/survived/, 'a new session survives an insert too');
unlike($stderr, qr/ERROR:  XX/, 'no internal error in the new session');

$node->poll_query_until('postgres', 'SELECT true');
ok(!$node->log_contains('terminated by signal'), 'no backend crashed');
is(ConnectorTest::deliv_worker_pid($node), $dispatcher, 'the dispatcher is the same process (no crash reset)');

$node->stop('fast');
done_testing();
