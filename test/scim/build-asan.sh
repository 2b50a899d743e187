#!/usr/bin/env bash
# Build connector-gateway with AddressSanitizer (and UBSan where the gateway's
# Makefile adds it) into OUTDIR/connector-gateway, from a copy of gateway/ so
# that the installed build is left alone.  Used by test/scim/run.sh.
#
#   test/scim/build-asan.sh OUTDIR [SOURCEDIR]     (default: gateway)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [SOURCEDIR]" >&2; exit 2; }
out=$1
cd "$(dirname "$0")/../.."
src=${2:-gateway}
rm -rf "$out"
mkdir -p "$out/src"
cp "$src"/*.c "$src"/*.h "$src"/Makefile "$out/src/"
if grep -q '^asan:' "$out/src/Makefile"; then
	make -C "$out/src" asan
	cp "$out/src/connector-gateway-asan" "$out/connector-gateway"
else
	make -C "$out/src" connector-gateway \
		CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address"
	cp "$out/src/connector-gateway" "$out/connector-gateway"
fi
