#!/usr/bin/env bash
# smoke.sh: a quick check of a running connector-gateway (not the test suite,
# which is test/scim/).  Expects the app of docs/scim.md's example shape:
#   gateway/smoke.sh http://127.0.0.1:18080/scim/v2/crm ctk_…
# Prints each request's status and fails on the first unexpected one.
set -u
B=$1
T="Authorization: Bearer $2"
J="Content-Type: application/scim+json"
fail=0

# check EXPECTED_STATUS METHOD PATH [BODY] [curl args...]
check() {
	local want=$1 method=$2 path=$3 body=${4:-}
	shift 4 2>/dev/null || shift $#
	local out code
	if [ -n "$body" ]; then
		out=$(curl -s -w '\n%{http_code}' -X "$method" -H "$T" -H "$J" "$@" "$B/$path" -d "$body")
	else
		out=$(curl -s -w '\n%{http_code}' -X "$method" -H "$T" "$@" "$B/$path")
	fi
	code=${out##*$'\n'}
	LAST=${out%$'\n'*}
	if [ "$code" != "$want" ]; then
		echo "FAIL $method $path: $code (want $want) ${LAST:0:300}"
		fail=1
	else
		echo "ok   $method $path $code"
	fi
}
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$LAST" "$1"; }

check 200 GET ServiceProviderConfig
check 200 GET ResourceTypes
check 200 GET ResourceTypes/User
check 200 GET Schemas
check 200 GET "Schemas/urn:ietf:params:scim:schemas:core:2.0:Group"
check 404 GET "Schemas/urn:x"
check 200 GET "Users?filter=userName%20eq%20%22nobody-$$%22&startIndex=1&count=100"
[ "$(field 'd["totalResults"]')" = 0 ] || { echo "FAIL expected no users"; fail=1; }
check 201 POST Users "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"smoke-$$\",\"active\":true,\"name\":{\"givenName\":\"S\"},\"emails\":[{\"value\":\"s$$@x.com\",\"type\":\"work\",\"primary\":true}]}"
uid=$(field 'd["id"]')
etag=$(field 'd["meta"]["version"]')
check 409 POST Users "{\"userName\":\"SMOKE-$$\"}"
check 200 GET "Users/$uid"
check 412 PATCH "Users/$uid" '{"Operations":[{"op":"replace","path":"active","value":false}]}' -H 'If-Match: W/"0"'
check 200 PATCH "Users/$uid" '{"Operations":[{"op":"Replace","path":"active","value":"False"}]}' -H "If-Match: $etag"
[ "$(field 'd["active"]')" = False ] || { echo "FAIL active not false"; fail=1; }
check 200 PATCH "Users/$uid" '{"Operations":[{"op":"replace","value":{"active":true}}]}'
check 201 POST Groups "{\"displayName\":\"smoke-group-$$\",\"members\":[{\"value\":\"$uid\"}]}"
gid=$(field 'd["id"]')
[ "$(field 'len(d["members"])')" = 1 ] || { echo "FAIL group has no member"; fail=1; }
check 200 GET "Groups?filter=displayName%20eq%20%22SMOKE-GROUP-$$%22&excludedAttributes=members"
check 200 GET "Users/$uid?attributes=groups"
check 204 PATCH "Groups/$gid" "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":\"Remove\",\"path\":\"members\",\"value\":[{\"value\":\"$uid\",\"\$ref\":null}]}]}"
check 204 PATCH "Groups/$gid" "{\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$uid\"}]}]}"
check 204 PATCH "Groups/$gid" "{\"Operations\":[{\"op\":\"remove\",\"path\":\"members[value eq \\\"$uid\\\"]\"}]}"
check 200 PATCH "Groups/$gid" "{\"Operations\":[{\"op\":\"replace\",\"value\":{\"displayName\":\"smoke-renamed-$$\",\"members\":[{\"value\":\"$uid\"}]}}]}"
check 400 GET "Users?filter=bogus%20eq%201"
check 400 PATCH "Users/$uid" '{"Operations":[{"op":"replace","path":"nope[","value":1}]}'
check 404 GET "Users/999999999"
check 204 DELETE "Groups/$gid"
check 204 DELETE "Users/$uid"
check 404 DELETE "Users/$uid"
T="Authorization: Bearer ctk_wrong"
check 401 GET Users
exit $fail
