# Helpers of the PostgreSQL::Test::Cluster suites: a cluster with connector
# preloaded and tuned for fast tests, the CRM fixture, and the real webhook
# receiver (test/receiver/receiver.py) as a child process.
package ConnectorTest;

use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

# A started primary with the extension in database postgres.
sub node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opt{streaming} ? 1 : 0);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'connector'
connector.naptime = '100ms'
connector.allow_private_targets = on
connector.retry_base = '100ms'
connector.retry_max = '1s'
connector.http_timeout = '5s'
} . ($opt{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION connector');
	return $node;
}

# SQL that loads the CRM fixture and registers it as application "crm".
sub crm_setup
{
	open my $fh, '<', 'test/fixtures/crm.sql' or die "test/fixtures/crm.sql: $!";
	local $/;
	my $sql = <$fh>;
	close $fh;
	return $sql . "\nSELECT connector.register_app('crm', pg_temp.crm_spec());\n";
}

sub json_field
{
	my ($text, $field) = @_;
	return decode_json($text)->{$field};
}

package ConnectorTest::Receiver;

use JSON::PP;
use File::Temp qw(tempdir);
use Time::HiRes qw(usleep);

# Start receiver.py; options: secret (or secrets => [...]), script, tls_cert,
# tls_key, port (to restart on the same port), extra => [...].
sub start
{
	my ($class, %opt) = @_;
	my $dir = $opt{dir} // tempdir(CLEANUP => 1);
	my @cmd = ('python3', 'test/receiver/receiver.py', '--port', $opt{port} // 0,
		'--log', "$dir/log.jsonl");
	push @cmd, '--secret', $_ for grep { defined } ($opt{secret}, @{ $opt{secrets} // [] });
	push @cmd, '--status-script', $opt{script} if $opt{script};
	push @cmd, '--tls-cert', $opt{tls_cert}, '--tls-key', $opt{tls_key} if $opt{tls_cert};
	push @cmd, @{ $opt{extra} // [] };
	my $pid = open(my $out, '-|', @cmd) or die "cannot start receiver: $!";
	my $port = <$out>;
	die "receiver did not start" unless defined $port;
	chomp $port;
	return bless { pid => $pid, out => $out, port => $port, dir => $dir,
		tls => $opt{tls_cert} ? 1 : 0, %opt }, $class;
}

sub url
{
	my ($self, $host) = @_;
	return sprintf('%s://%s:%d/hook', $self->{tls} ? 'https' : 'http',
		$host // '127.0.0.1', $self->{port});
}

# Every request logged so far, oldest first.
sub entries
{
	my ($self) = @_;
	my $log = "$self->{dir}/log.jsonl";
	return () unless -e $log;
	open my $fh, '<', $log or die $!;
	my @e = map { decode_json($_) } grep { /\S/ } <$fh>;
	close $fh;
	return @e;
}

# Wait (up to timeout seconds, default 60) until n requests were answered
# 2xx; return those, oldest first.
sub wait_for
{
	my ($self, $n, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	my @ok;
	while (1)
	{
		@ok = grep { $_->{status} >= 200 && $_->{status} < 300 } $self->entries;
		return @ok if @ok >= $n || time > $deadline;
		usleep(50_000);
	}
}

# Wait until at least n requests arrived, whatever the answer.
sub wait_requests
{
	my ($self, $n, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	my @all;
	while (1)
	{
		@all = $self->entries;
		return @all if @all >= $n || time > $deadline;
		usleep(50_000);
	}
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'TERM', $self->{pid};
	waitpid($self->{pid}, 0);
	close $self->{out};
	$self->{pid} = undef;
}

sub DESTROY
{
	my ($self) = @_;
	$self->stop;
}

1;
