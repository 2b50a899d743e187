#!/usr/bin/env bash
# The SET suite (spec section 12): every event type rendered by
# connector._sets() and verified with JOSE code independent of the
# extension (test/ssf/verify.py: Python's cryptography and PyJWT, both from
# Debian).  Runs inside pg_virtualenv (PG* variables point at the cluster, as
# a superuser), from test/suites.sh, on a database of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
db=connector_ssf
dropdb --if-exists "$db" >/dev/null 2>&1
createdb "$db"
/usr/bin/python3 test/ssf/verify.py "$db"
