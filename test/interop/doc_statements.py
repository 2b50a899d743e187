#!/usr/bin/python3
"""Print the statements of the ```sql blocks of a Markdown file that are marked
for drivers (`<!-- interop: drivers -->` on a line of their own before the
fence, or before the docs-test marker that precedes the fence), one per
entry, each after a line "@@ <file>:<line>", for test/interop/run.sh.

A statement ends with a line ending in ";" (comment lines aside).  A block meant for drivers must
not end a statement with "; -- comment" (a JDBC PreparedStatement sees two
statements there): such a line is an error, and so is a block left without
a final ";".
"""
import re
import sys


def main(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    errors = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sql" and any(
                lines[j].strip() == "<!-- interop: drivers -->" for j in (i - 1, i - 2) if j >= 0):
            i += 1
            start = None
            buf = []
            while i < len(lines) and lines[i].strip() != "```":
                line = lines[i]
                if re.search(r";\s*--", line):
                    errors.append(f"{path}:{i + 1}: a comment after ';' (a driver sees two statements)")
                if buf or line.strip():
                    if start is None:
                        start = i + 1
                    buf.append(line)
                if line.rstrip().endswith(";") and not line.lstrip().startswith("--"):
                    out.append((start, "\n".join(buf)))
                    buf, start = [], None
                i += 1
            if any(x.strip() for x in buf):
                errors.append(f"{path}:{start}: statement without a final ';'")
        i += 1
    if errors:
        sys.stderr.write("\n".join(errors) + "\n")
        return 1
    if not out:
        sys.stderr.write(f"{path}: no block marked <!-- interop: drivers -->\n")
        return 1
    for start, sql in out:
        print(f"@@ {path}:{start}")
        print(sql)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
