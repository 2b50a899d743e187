# The dispatcher's life: the launcher starts with the server, a worker serves a
# database once the extension exists, and leaves on DROP EXTENSION.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'connector'
connector.naptime = '100ms'
});
$node->start;

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector launcher'"),
	'the launcher runs');

$node->safe_psql('postgres', 'CREATE EXTENSION connector');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher' AND datname = 'postgres'"),
	'a worker serves the database once the extension exists');

$node->safe_psql('postgres', 'DROP EXTENSION connector');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"),
	'the worker leaves after DROP EXTENSION');

$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION connector');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher' AND datname = 'other'"),
	'a new database with the extension is served');
$node->safe_psql('postgres', 'DROP DATABASE other');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'other'"), '0',
	'DROP DATABASE succeeds while its worker was running');

$node->stop('fast');
done_testing();
