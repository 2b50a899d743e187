#!/usr/bin/env bash
# The docs test: every fenced ```sql block of README.md and docs/*.md runs and
# succeeds, so the examples cannot rot.  Runs inside pg_virtualenv (PG*
# variables point at the cluster), as a superuser.
#
# Each Markdown file gets a fresh database set up by test/docs/setup.sql; its
# blocks then run in document order against that database, each in its own
# psql session and single transaction, so a later block sees what earlier
# ones committed (session settings such as SET ROLE do not carry over).
#
# A block not meant to run is marked on the line before its fence:
#   <!-- docs-test: skip -->              a fragment or illustrative output
#   <!-- docs-test: error SQLSTATE -->    must fail with that SQLSTATE
#
# Prints one line per block (file:line ok, FAIL or skip) and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
passed=0
failed=0
skipped=0

# Split a Markdown file into $work/block.N.sql, one "N line mode sqlstate"
# line per block on stdout.
extract() {
	awk -v dir="$work" '
		inblock && /^[ \t]*```[ \t]*$/ { inblock = 0; close(out); next }
		inblock { print > out; next }
		/^[ \t]*```sql[ \t]*$/ {
			n++
			out = dir "/block." n ".sql"
			printf "" > out
			mode = "run"; state = "-"
			if (prev ~ /^[ \t]*<!-- docs-test: skip -->[ \t]*$/)
				mode = "skip"
			else if (match(prev, /<!-- docs-test: error [0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z] -->/)) {
				mode = "error"
				state = substr(prev, RSTART + 22, 5)
			} else if (prev ~ /docs-test:/)
				mode = "bad"
			print n, NR, mode, state
			inblock = 1
		}
		{ prev = $0 }
		END { if (inblock) print "unterminated", NR, "bad", "-" }
	' "$1"
}

for f in README.md docs/*.md; do
	grep -q '^[[:space:]]*```sql[[:space:]]*$' "$f" || continue
	rm -f "$work"/block.*.sql
	db="docs_$(basename "$f" .md | tr -c 'a-zA-Z0-9\n' '_' | tr 'A-Z' 'a-z')"
	dropdb --if-exists "$db" >/dev/null 2>&1
	createdb "$db"
	if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/docs/setup.sql >"$work/setup.log" 2>&1; then
		echo "$f: setup FAIL"
		cat "$work/setup.log"
		failed=$((failed + 1))
		continue
	fi
	while read -r n line mode state; do
		where="$f:$line"
		if [ "$mode" = bad ]; then
			echo "$where FAIL (unknown docs-test marker or unterminated block)"
			failed=$((failed + 1))
			continue
		fi
		if [ "$mode" = skip ]; then
			echo "$where skip"
			skipped=$((skipped + 1))
			continue
		fi
		psql -X -q -1 -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" \
			-f "$work/block.$n.sql" >"$work/out" 2>&1
		rc=$?
		got=$(grep -o 'ERROR:  [0-9A-Z]\{5\}:' "$work/out" | head -n 1 | cut -c 9-13)
		if [ "$mode" = run ] && [ $rc -eq 0 ] && ! grep -q 'ERROR:' "$work/out"; then
			echo "$where ok"
			passed=$((passed + 1))
		elif [ "$mode" = error ] && [ $rc -ne 0 ] && [ "$got" = "$state" ]; then
			echo "$where ok (error $state)"
			passed=$((passed + 1))
		else
			if [ "$mode" = error ]; then
				echo "$where FAIL (expected error $state, got ${got:-none})"
			else
				echo "$where FAIL"
			fi
			sed 's/^/    /' "$work/out"
			failed=$((failed + 1))
		fi
	done < <(extract "$f")
	dropdb --if-exists "$db" >/dev/null 2>&1
done

echo "$skipped skipped (marked docs-test: skip)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
