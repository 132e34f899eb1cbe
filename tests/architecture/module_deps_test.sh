#!/usr/bin/env bash
# Every #include of a fabu header follows the dependency table of
# docs/architecture.md ("Modules and their dependencies"): a module includes
# only itself and the modules of its row. Prints each include that breaks
# the table, with its file and line. Usage: module_deps_test.sh SOURCE_DIR
set -euo pipefail
root=$1
doc="$root/docs/architecture.md"
[[ -f $doc ]] || { echo "FAIL: $doc is missing"; exit 1; }
python3 - "$root" "$doc" <<'PY'
import os, re, sys
root, doc = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
section = text.split("## Modules and their dependencies", 1)
if len(section) < 2:
    print("FAIL: docs/architecture.md has no 'Modules and their dependencies' section")
    sys.exit(1)
rules = {}
for line in section[1].split("\n## ", 1)[0].splitlines():
    m = re.match(r"\|\s*`([a-z/_]+)`\s*\|(.*)\|\s*$", line)
    if not m:
        continue
    module, allowed = m.group(1), m.group(2)
    names = set(re.findall(r"`([a-z/_]+)`", allowed))
    if "every `coordinator/` module above" in allowed:
        names |= {k for k in rules if k.startswith("coordinator/")}
    rules[module] = names
if len(rules) < 10:
    print(f"FAIL: read only {len(rules)} rows from the table in docs/architecture.md")
    sys.exit(1)

def module_of(path):
    # The longest module name that is a prefix of the path.
    best = None
    for m in rules:
        if path == m or path.startswith(m + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best

include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
bad = 0
checked = 0
for top in ("protocol", "platform", "packaging", "agent", "coordinator"):
    for dirpath, _, files in os.walk(os.path.join(root, top)):
        for name in files:
            if not name.endswith((".cpp", ".hpp")):
                continue
            path = os.path.relpath(os.path.join(dirpath, name), root)
            mine = module_of(path)
            if mine is None:
                print(f"FAIL: {path} is in no module of the table")
                bad += 1
                continue
            for number, line in enumerate(open(os.path.join(root, path), encoding="utf-8"), 1):
                m = include.match(line)
                if not m:
                    continue
                target = module_of(m.group(1))
                if target is None:
                    continue  # a header of no module: a third-party or system one
                checked += 1
                if target != mine and target not in rules[mine]:
                    print(f"FAIL: {path}:{number}: {mine} includes {m.group(1)} ({target}), "
                          f"which its row in docs/architecture.md does not allow")
                    bad += 1
print(f"module dependencies: {checked} includes checked, {bad} against the table")
sys.exit(1 if bad else 0)
PY
