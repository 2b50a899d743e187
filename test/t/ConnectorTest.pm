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
	$node->append_conf('postgresql.conf', base_conf() . ($opt{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION connector');
	return $node;
}

# The settings of node(): connector preloaded, tuned for fast tests.
sub base_conf
{
	return qq{
shared_preload_libraries = 'connector'
connector.naptime = '100ms'
connector.allow_private_targets = on
connector.retry_base = '100ms'
connector.retry_max = '1s'
connector.http_timeout = '5s'
};
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

# --- reliability suites (020-025) ---------------------------------------

# Every event of changes(app), paged: a list of [position, id, event text].
sub reliab_changes
{
	my ($node, $app, $db) = @_;
	my @all;
	my $after = 0;
	while (1)
	{
		my $out = $node->safe_psql($db // 'postgres',
			"SELECT position, event->>'id', event::text FROM connector.changes('$app', $after, 100000)");
		last if $out eq '';
		for my $line (split /\n/, $out)
		{
			my ($pos, $id, $ev) = split /\|/, $line, 3;
			push @all, [ $pos, $id, $ev ];
		}
		$after = $all[-1][0];
	}
	return @all;
}

# The events of received messages (a batch holds several), oldest first,
# each a decoded hash, for requests answered 2xx.
sub reliab_received_events
{
	my ($rx) = @_;
	my @events;
	for my $e ($rx->entries)
	{
		next unless defined $e->{status} && $e->{status} >= 200 && $e->{status} < 300;
		my $doc = JSON::PP::decode_json($e->{body});
		if (($doc->{type} // '') eq 'event.batch')
		{
			push @events, @{ $doc->{data}{events} };
		}
		else
		{
			push @events, $doc;
		}
	}
	return @events;
}

# Problems with the outbox's shape, as a list of strings (empty when sound):
# sealed rows cover positions 1.. (or purged_through+1..) without gaps or
# overlaps, nothing left unsealed once sealing ran, last_position matches.
sub reliab_outbox_problems
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql($db // 'postgres', q{
SELECT connector._seal();
WITH r AS (SELECT position, n, lag(position + n) OVER (ORDER BY position) AS expect
             FROM connector.outbox WHERE position IS NOT NULL)
SELECT 'gap or overlap at ' || position FROM r WHERE expect IS NOT NULL AND position <> expect
UNION ALL
SELECT 'unsealed rows: ' || count(*) FROM connector.outbox WHERE position IS NULL HAVING count(*) > 0
UNION ALL
SELECT 'last_position ' || s.last_position || ' but outbox ends at ' || max(o.position + o.n - 1)
  FROM connector.seal_state s, connector.outbox o WHERE o.position IS NOT NULL
 GROUP BY s.last_position HAVING s.last_position <> max(o.position + o.n - 1)
UNION ALL
SELECT 'duplicate event id ' || id FROM (
	SELECT 'evt_' || txid::text || '_' || (seq + i - 1) AS id
	  FROM connector.outbox, generate_series(1, n) i) x GROUP BY id HAVING count(*) > 1
});
	my @lines = split /\n/, $out;
	shift @lines;				# the _seal() count
	return @lines;
}

# VmRSS of a process in kB (Linux), undef when it is gone; with a second
# argument another field of /proc/<pid>/status, e.g. RssAnon (private memory,
# without the shared buffers the process touched).
sub reliab_rss_kb
{
	my ($pid, $field) = @_;
	$field //= 'VmRSS';
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>)
	{
		return $1 if /^$field:\s+(\d+)\s+kB/;
	}
	return undef;
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
