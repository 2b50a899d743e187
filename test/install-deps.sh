#!/usr/bin/env bash
# Install the Debian packages the build and the test suites need, when missing.
set -euo pipefail
pkgs=(postgresql-server-dev-15 libcurl4-openssl-dev libjansson-dev libssl-dev
      libmicrohttpd-dev libpq-dev libgnutls28-dev
      postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
      postgresql-common python3 openssl
      libpostgresql-jdbc-java default-jdk-headless python3-psycopg2 python3-psycopg
      odbc-postgresql unixodbc python3-pyodbc
      python3-cryptography python3-jwt
      curl wrk)   # curl: make demo; wrk: the load generator of test/bench/scim.sh
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm for the node-postgres part of the interop suite: Debian's,
# unless the machine already has its own
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${missing[*]} (run 'make deps' as root, or install them)" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
