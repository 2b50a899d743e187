#!/usr/bin/env bash
# The SET suite (spec section 12): every event type rendered by
# connector._sets() and verified with JOSE code independent of the
# extension (test/ssf/verify.py: Python's cryptography and PyJWT, both from
# Debian); then the transmitter's HTTP side through the gateway
# (test/ssf/gateway_test.py).  Runs inside pg_virtualenv (PG* variables
# point at the cluster, as
# a superuser), from test/suites.sh, on a database of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
db=connector_ssf
dropdb --if-exists "$db" >/dev/null 2>&1
createdb "$db"
status=0
/usr/bin/python3 test/ssf/verify.py "$db" || status=1

# The transmitter over HTTP: a real connector-gateway (the installed one, or
# SSF_GATEWAY_BIN) on loopback in front of this cluster (test/ssf/gateway_test.py).
gwdb=connector_ssf_gw
dropdb --if-exists "$gwdb" >/dev/null 2>&1
createdb "$gwdb"
timeout 300 /usr/bin/python3 test/ssf/gateway_test.py "$gwdb" || status=1
exit $status
