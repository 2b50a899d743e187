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

# ---- delivery suite helpers (003..006): names start with deliv_ ----

# Add an endpoint of application crm; opts is a Perl hash turned into JSON.
sub deliv_add_endpoint
{
	my ($node, $name, $url, $secret, $opts, $db) = @_;
	my $json = encode_json($opts // {});
	$node->safe_psql($db // 'postgres',
		"SELECT connector.add_endpoint('crm', '$name', '$url', '$secret', '$json')");
}

# One column of the status row of an endpoint.
sub deliv_status
{
	my ($node, $name, $col, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		"SELECT $col FROM connector.status WHERE endpoint = '$name'");
}

# Insert n grants (one transaction, n events); returns nothing.
sub deliv_grants
{
	my ($node, $n, $db) = @_;
	$node->safe_psql($db // 'postgres',
		"INSERT INTO \"Crm App\".user_roles SELECT 1, 2, NULL FROM generate_series(1, $n)");
}

# Event ids of changes() after a position, in position order.
sub deliv_event_ids
{
	my ($node, $after, $db) = @_;
	my $ids = $node->safe_psql($db // 'postgres',
		"SELECT event->>'id' FROM connector.changes('crm', " . ($after // 0)
		  . ", 100000) ORDER BY position");
	return split /\n/, $ids;
}

# The last position of the stream (sealed).
sub deliv_last_position
{
	my ($node, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		"SELECT coalesce(max(position), 0) FROM connector.changes('crm', 0, 100000)");
}

# The event ids carried by a message body (one event or a batch).
sub deliv_body_event_ids
{
	my ($body) = @_;
	my $doc = decode_json($body);
	return map { $_->{id} } @{ $doc->{data}{events} } if ($doc->{type} // '') eq 'event.batch';
	return ($doc->{id});
}

# Event ids delivered (answered 2xx) to a receiver, in arrival order, with
# duplicates from redeliveries removed.
sub deliv_delivered_ids
{
	my ($rx) = @_;
	my (%seen, @ids);
	for my $e (grep { defined $_->{status} && $_->{status} >= 200 && $_->{status} < 300 } $rx->entries)
	{
		push @ids, grep { !$seen{$_}++ } deliv_body_event_ids($e->{body});
	}
	return @ids;
}

# Messages whose attempts differ in body: "webhook-id" => count of bodies.
# Empty when every attempt of every message was byte-identical.
sub deliv_body_mismatches
{
	my ($rx) = @_;
	my (%bodies, %bad);
	for my $e ($rx->entries)
	{
		my $id = $e->{headers}{'webhook-id'} // '';
		$bodies{$id}{ $e->{body} } = 1;
	}
	$bad{$_} = scalar keys %{ $bodies{$_} } for grep { keys %{ $bodies{$_} } > 1 } keys %bodies;
	return \%bad;
}

# How many requests a receiver logged.
sub deliv_count
{
	my @e = $_[0]->entries;
	return scalar @e;
}

# Poll until code returns true, up to timeout seconds (default 60).
sub deliv_wait_until
{
	my ($code, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time <= $deadline)
	{
		return 1 if $code->();
		usleep(50_000);
	}
	return 0;
}

# Pid of the dispatcher worker of a database.
sub deliv_worker_pid
{
	my ($node, $db) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"
		  . " AND datname = '" . ($db // 'postgres') . "'") or return undef;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector dispatcher'"
		  . " AND datname = '" . ($db // 'postgres') . "'");
}

# A field of /proc/PID/status in kB (VmRSS, RssAnon, ...).
sub deliv_proc_kb
{
	my ($pid, $field) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>)
	{
		return $1 if /^\Q$field\E:\s+(\d+)\s+kB/;
	}
	return undef;
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
	# the receiver may be writing a line right now: only complete lines count
	my @e = map { decode_json($_) } grep { /\S/ && /\n\z/ } <$fh>;
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
