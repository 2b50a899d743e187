#!/usr/bin/env bash
# The SCIM suite: connector-gateway end to end over real HTTP on loopback, as
# Entra ID, Okta, SailPoint and midPoint call it (spec section 11).  Runs
# inside pg_virtualenv (PG* variables point at the cluster, as a superuser),
# from test/suites.sh, after make install put connector-gateway into
# $(pg_config --bindir).
#
#   1. a database with the fixture test/scim/setup.sql, a login role granted
#      connector_platform for the gateway, tokens made with add_token
#   2. the gateway over plain HTTP (--insecure-http, flags): the whole suite,
#      including a database stop and start, then fuzz.py
#   3. the gateway over TLS (--config file, a test CA the client verifies
#      against): the suite again, TLS checks, a certificate reload on SIGHUP
#   4. the gateway built with AddressSanitizer: fuzz.py again; any ASan
#      report fails the run
#
# Every step that cannot run is a failure, never a skip.  Prints each check
# and a summary; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

python=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1	# no __pycache__ in the source tree
db=scim_test
work=$(mktemp -d)
chmod 755 "$work"
gateway_pid=
second_pid=
cleanup() {
	local p
	for p in $gateway_pid $second_pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT
status=0
fail() {
	echo "not ok - $*"
	status=1
}

# SCIM_GATEWAY_BIN and SCIM_GATEWAY_SRC: a development build instead of the
# installed one (and its sources for the AddressSanitizer build).
gateway=${SCIM_GATEWAY_BIN:-"$(pg_config --bindir)/connector-gateway"}
version=${PGVERSION:-$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')}
# How the suite stops and starts the cluster (pg_virtualenv's "regress").
export SCIM_DB_STOP=${SCIM_DB_STOP:-"pg_ctlcluster $version regress stop -m fast"}
export SCIM_DB_START=${SCIM_DB_START:-"pg_ctlcluster $version regress start"}
export SCIM_DB=$db

# 1. The database, the gateway's login and the tokens.
password="scim-$RANDOM$RANDOM$RANDOM"
dropdb --if-exists "$db" >/dev/null 2>&1
if ! { createdb "$db" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/scim/setup.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
		-c "ALTER ROLE scim_gateway PASSWORD '$password'"; } >"$work/setup.log" 2>&1; then
	fail "setup: $(tail -n 20 "$work/setup.log")"
	echo "0 passed, 1 failed"
	exit 1
fi

# name app: one token each; the JSON file the suite and the fuzzer read.
tokens="$work/tokens.json"
{
	echo "{"
	sep=
	for pair in suite:acme entra:acme okta:acme sailpoint:acme midpoint:acme \
		racer1:acme racer2:acme other:other ro:ro fuzz:fuzz rw:rw; do
		name=${pair%%:*}
		app=${pair#*:}
		tok=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" \
			-c "SELECT connector.add_token('$app', '$name')" 2>>"$work/setup.log")
		if [ -z "$tok" ]; then
			tok=missing
		fi
		printf '%s"%s": {"app": "%s", "token": "%s"}\n' "$sep" "$name" "$app" "$tok"
		sep=,
	done
	echo "}"
} >"$tokens"
if grep -q '"missing"' "$tokens"; then
	fail "connector.add_token: $(tail -n 5 "$work/setup.log")"
fi
export SCIM_TOKENS=$tokens
conninfo="host=localhost port=$PGPORT dbname=$db user=scim_gateway password=$password"

if [ ! -x "$gateway" ]; then
	fail "no gateway at $gateway (make install builds and installs connector-gateway)"
	echo "0 passed, 1 failed"
	exit 1
fi

free_port() {
	$python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start a gateway (binary, log file, args...); wait for /healthz.
start_gateway() {
	local bin=$1 log=$2 scheme=$3
	shift 3
	"$bin" "$@" 2>"$log" &
	gateway_pid=$!
	export SCIM_GATEWAY_PID=$gateway_pid
	local i
	for i in $(seq 1 100); do
		if $python test/scim/scim_test.py --healthz "$scheme://127.0.0.1:$port" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$gateway_pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	fail "gateway did not start: $(tail -n 20 "$log")"
	return 1
}

# SIGTERM: the gateway finishes what is in flight and exits 0 promptly.
# With a URL, the signal comes while a request is half sent (scim_test.py
# --drain), which must still be answered.
stop_gateway() {
	local what=$1 url=${2:-} i rc
	[ -n "$gateway_pid" ] || return 0
	if ! kill -0 "$gateway_pid" 2>/dev/null; then
		wait "$gateway_pid"
		rc=$?
		fail "$what: the gateway had died (exit $rc)"
		gateway_pid=
		return
	fi
	if [ -n "$url" ]; then
		$python test/scim/scim_test.py --drain --url "$url" || status=1
	else
		kill -TERM "$gateway_pid"
	fi
	for i in $(seq 1 100); do
		kill -0 "$gateway_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$gateway_pid" 2>/dev/null; then
		fail "$what: the gateway did not exit within 10 s of SIGTERM"
		kill -KILL "$gateway_pid"
	fi
	wait "$gateway_pid"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$what: the gateway exited $rc after SIGTERM"
	else
		echo "ok - $what: the gateway exits 0 on SIGTERM"
	fi
	gateway_pid=
}

# The request log: one line per request, never a token.  Its 5xx lines and
# error messages are shown, to tell a gateway bug from a suite bug.
check_log() {
	local what=$1 log=$2 leaked=0 tok
	grep -E ' 5[0-9][0-9] [0-9]+ms|internal|SQLSTATE|ERROR' "$log" | grep -v 'Error processing request' |
		head -n 20 | sed "s/^/# $what gateway log: /"
	for tok in $(grep -o 'ctk_[A-Za-z0-9_-]*' "$tokens" "$work"/extra-tokens 2>/dev/null | sed 's/^[^:]*://'); do
		if grep -qF "$tok" "$log"; then
			leaked=1
		fi
	done
	if [ "$leaked" -ne 0 ]; then
		fail "$what: a bearer token appears in the gateway's log"
	else
		echo "ok - $what: no bearer token in the gateway's log"
	fi
	if grep -q 'Users' "$log" && grep -q 'suite' "$log"; then
		echo "ok - $what: the log names paths and token names"
	else
		fail "$what: the log has no request lines with the path and the token name"
	fi
}

export SCIM_EXTRA_TOKENS="$work/extra-tokens"
: >"$SCIM_EXTRA_TOKENS"

# 2. Plain HTTP: the whole suite with the database stop, then the fuzzer.  A
# second gateway on the same database serves the second client of the races
# (spec: any number of gateways against one database).
port2=$(free_port)
"$gateway" --listen "127.0.0.1:$port2" --database "$conninfo" --pool 2 --insecure-http \
	2>"$work/second.log" &
second_pid=$!
port=$(free_port)
if start_gateway "$gateway" "$work/plain.log" http --listen "127.0.0.1:$port" \
	--database "$conninfo" --pool 4 --insecure-http; then
	if ! $python test/scim/scim_test.py --healthz "http://127.0.0.1:$port2" >/dev/null 2>&1; then
		fail "the second gateway did not start: $(tail -n 5 "$work/second.log")"
	fi
	if grep -qi 'insecure\|plain\|warn' "$work/plain.log"; then
		echo "ok - --insecure-http warns at start"
	else
		fail "--insecure-http gives no warning at start: $(head -n 3 "$work/plain.log")"
	fi
	timeout 300 $python test/scim/scim_test.py --url "http://127.0.0.1:$port" \
		--url2 "http://127.0.0.1:$port2" --run plain --db-restart || status=1
	kill -TERM "$second_pid"
	if ! wait "$second_pid"; then
		fail "the second gateway did not exit 0 on SIGTERM: $(tail -n 5 "$work/second.log")"
	fi
	second_pid=
	timeout 300 $python test/scim/fuzz.py --url "http://127.0.0.1:$port" \
		--requests "${SCIM_FUZZ_REQUESTS:-10000}" || status=1
	stop_gateway "plain HTTP" "http://127.0.0.1:$port"
	check_log "plain HTTP" "$work/plain.log"
else
	status=1
fi

# SCIM_QUICK=1 (development only): stop after the plain run, and fail so that
# a quick run is never taken for a whole one.
if [ -n "${SCIM_QUICK:-}" ]; then
	fail "SCIM_QUICK: the TLS and AddressSanitizer runs were not made"
	exit 1
fi

# 3. TLS from a config file, the client verifying against the test CA.
if test/receiver/make-certs.sh "$work/certs" >"$work/certs.log" 2>&1; then
	cp "$work/certs/server.crt" "$work/live.crt"
	cp "$work/certs/server.key" "$work/live.key"
	port=$(free_port)
	cat >"$work/gateway.conf" <<-EOF
		# connector-gateway configuration of the TLS run
		listen = 127.0.0.1:$port
		database = $conninfo
		tls-cert = $work/live.crt
		tls-key = $work/live.key
		pool = 4
	EOF
	export SCIM_CA="$work/certs/ca.crt"
	export SCIM_CERTS="$work/certs"
	export SCIM_LIVE_CERT="$work/live.crt"
	export SCIM_LIVE_KEY="$work/live.key"
	if start_gateway "$gateway" "$work/tls.log" https --config "$work/gateway.conf"; then
		timeout 300 $python test/scim/scim_test.py --url "https://127.0.0.1:$port" \
			--run tls --tls-checks || status=1
		stop_gateway "TLS" "https://127.0.0.1:$port"
		check_log "TLS" "$work/tls.log"
	else
		status=1
	fi
	unset SCIM_CA
else
	fail "make-certs.sh: $(tail -n 5 "$work/certs.log")"
fi

# 4. The fuzzer against an AddressSanitizer build of the gateway.
asan_bin="$work/asan/connector-gateway"
if test/scim/build-asan.sh "$work/asan" "${SCIM_GATEWAY_SRC:-gateway}" >"$work/asan-build.log" 2>&1 && [ -x "$asan_bin" ]; then
	port=$(free_port)
	mkdir -p "$work/asan-reports"
	export ASAN_OPTIONS="log_path=$work/asan-reports/asan:detect_leaks=0:abort_on_error=0:halt_on_error=1"
	export UBSAN_OPTIONS="log_path=$work/asan-reports/ubsan:print_stacktrace=1"
	if start_gateway "$asan_bin" "$work/asan.log" http --listen "127.0.0.1:$port" \
		--database "$conninfo" --pool 4 --insecure-http; then
		timeout 600 $python test/scim/fuzz.py --url "http://127.0.0.1:$port" \
			--requests 10000 || status=1
		stop_gateway "AddressSanitizer"
	else
		status=1
	fi
	unset ASAN_OPTIONS UBSAN_OPTIONS
	if ls "$work"/asan-reports/* >/dev/null 2>&1; then
		fail "sanitizer reports: $(cat "$work"/asan-reports/* | head -c 4000)"
	else
		echo "ok - AddressSanitizer: no report from the fuzzed gateway"
	fi
	if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$work/asan.log"; then
		fail "sanitizer error in the gateway's log: $(grep -A 30 'ERROR: AddressSanitizer\|runtime error:' "$work/asan.log" | head -n 40)"
	fi
else
	fail "AddressSanitizer build of the gateway: $(tail -n 20 "$work/asan-build.log")"
fi

dropdb --if-exists "$db" >/dev/null 2>&1
if [ "$status" -eq 0 ]; then
	echo "SCIM suite: all passed"
else
	echo "SCIM suite: FAILED"
fi
exit $status
