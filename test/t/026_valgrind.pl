# The C code under Valgrind memcheck, once, on a reduced workload: a server
# started through a wrapper that runs postgres under valgrind (every backend
# and worker is a fork, so every one is checked), then capture (platform
# calls, direct DML, a TRUNCATE, a rolled-back subtransaction), sealing,
# changes(), and delivery of signed webhooks (dispatcher, HTTP, signing,
# JSON) to the real receiver.  Any memcheck error fails the test.
# CONNECTOR_VALGRIND=0 skips it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/t';
use ConnectorTest;

plan skip_all => 'CONNECTOR_VALGRIND=0' if ($ENV{CONNECTOR_VALGRIND} // 1) eq '0';
plan skip_all => 'valgrind not installed' if system('valgrind --version >/dev/null 2>&1') != 0;

my $node = PostgreSQL::Test::Cluster->new('valgrind');
$node->init;
$node->append_conf('postgresql.conf', ConnectorTest::base_conf() . qq{
connector.http_timeout = '30s'
max_connections = 10
autovacuum = off
});

my $dir = PostgreSQL::Test::Utils::tempdir();
my $bindir = `pg_config --bindir`;
chomp $bindir;
my $supp = "$ENV{TESTDIR}/test/valgrind/postgres.supp";
open my $fh, '>', "$dir/postgres" or die $!;
print $fh qq{#!/bin/sh
case "\$1" in -V|--version|-C) exec $bindir/postgres "\$@";; esac
exec valgrind --quiet --tool=memcheck --leak-check=no --track-origins=no --error-limit=no \\
	--suppressions=$supp --gen-suppressions=all --log-file=$dir/vg.%p.log \\
	$bindir/postgres "\$@"
};
close $fh;
chmod 0755, "$dir/postgres";
system_or_bail('pg_ctl', '-w', '-t', '300', '-D', $node->data_dir, '-l', $node->logfile,
	'-p', "$dir/postgres", 'start');

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $rx = ConnectorTest::Receiver->start(secret => $secret);
$node->safe_psql('postgres', 'CREATE EXTENSION connector');
$node->safe_psql('postgres', ConnectorTest::crm_setup());
$node->safe_psql('postgres', "SELECT connector.add_endpoint('crm', 'hook', '${\ $rx->url}', '$secret', '{\"batch_size\": 5}')");
$node->safe_psql('postgres', q{
SELECT connector.grant('crm', '2', '7', 'r1');
SELECT connector.grant('crm', '2', '7', 'r1');
SELECT connector.revoke('crm', '1', '1');
SELECT connector.disable('crm', '10');
SELECT connector.apply('crm', '[{"op": "grant", "account": "9", "entitlement": "2"}, {"op": "enable", "account": "10"}]');
INSERT INTO "Crm App".user_roles VALUES (9, 1, NULL), (9, 7, now() + interval '1 day');
UPDATE "Crm App".users SET email = 'b@example.com', "Department Name" = 'Ops' WHERE id = 2;
UPDATE "Crm App".api_keys SET revoked_at = now() WHERE id = 101;
BEGIN; SAVEPOINT s; INSERT INTO "Crm App".user_roles VALUES (2, 1, NULL); ROLLBACK TO s; COMMIT;
TRUNCATE "Crm App".user_roles;
SELECT count(*) FROM connector.changes('crm');
});
my @got = $rx->wait_for(1, 120);
ok(scalar @got >= 1, 'webhooks were delivered under valgrind');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM connector.pending}), 'and everything pending was delivered');
my ($ret) = $node->psql('postgres', q{SELECT connector.grant('crm', 'nope', '7')});
isnt($ret, 0, 'an error path ran too');
$node->safe_psql('postgres', 'DROP EXTENSION connector');

system_or_bail('pg_ctl', '-w', '-t', '300', '-D', $node->data_dir, '-m', 'fast', 'stop');
$rx->stop;

my @logs = glob("$dir/vg.*.log");
cmp_ok(scalar @logs, '>=', 3, 'valgrind watched the postmaster and its children (' . scalar(@logs) . ' logs)');
my @errors;
for my $log (@logs)
{
	my $text = slurp_file($log);
	push @errors, "$log:\n$text" if $text =~ /\S/;
}
is(scalar @errors, 0, 'valgrind reports no error') or diag substr(join("\n", @errors), 0, 20000);
done_testing();
