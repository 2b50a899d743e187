#!/usr/bin/env bash
# Test certificates for TLS delivery tests, with the openssl CLI:
#
#   OUTDIR/ca.crt, ca.key             a throwaway test CA
#   OUTDIR/server.crt, server.key     for localhost and 127.0.0.1 (SAN), signed by the CA
#   OUTDIR/wrong.crt, wrong.key       for wrong.example only, signed by the same CA:
#                                     chain verification succeeds, host name
#                                     verification must fail
#
#   test/receiver/make-certs.sh OUTDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
cd "$out"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
	-keyout ca.key -out ca.crt -subj '/CN=connector test CA' \
	-addext 'basicConstraints=critical,CA:TRUE' \
	-addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null

# A server certificate for the given subject alternative names, signed by the CA.
issue() {
	local name=$1 cn=$2 san=$3
	openssl req -newkey rsa:2048 -nodes -sha256 \
		-keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
	printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
		'extendedKeyUsage=serverAuth' "subjectAltName=$san" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days 30 -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}
issue server localhost 'DNS:localhost,IP:127.0.0.1'
issue wrong wrong.example 'DNS:wrong.example'
rm -f ca.srl
# the receiver may run as another user than the one that made the files
chmod a+r ./*.crt ./*.key
