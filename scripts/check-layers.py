#!/usr/bin/env python3
"""make check-layers: the structure docs/architecture.md promises, checked.

1. No circle of imports in src/: a module is a .c file with the .h of the
   same name; a header without a .c (a folder's private header such as
   src/restic/internal.h) belongs to every module that includes it.
2. Each layer imports only the layers below it (LAYERS).
3. No object of src/cmd/ uses a symbol that another object of src/cmd/
   defines (nm): commands call the pipeline, never each other.

Usage: scripts/check-layers.py [BUILD_DIR]   (default build; step 3 needs
the objects, `make all` first). Exits 1 listing every problem.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
BUILD = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build")

# What each folder may import (besides itself). Sources sit above the staging
# set they write into; the pipeline above every part it runs; commands above
# the pipeline; main.c at the top.
LAYERS = {
    "core": set(),
    "stage": {"core"},
    "restic": {"core"},
    "source": {"core", "stage"},
    "pipeline": {"core", "stage", "restic", "source"},
    "cmd": {"core", "stage", "restic", "source", "pipeline"},
    "": {"core", "stage", "restic", "source", "pipeline", "cmd"},  # src/main.c
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    rel = os.path.relpath(path, SRC)
    return rel.split(os.sep)[0] if os.sep in rel else ""


def includes(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = INCLUDE.match(line)
            if m:
                out.append(os.path.normpath(os.path.join(os.path.dirname(path), m.group(1))))
    return out


def sources():
    for d, _, files in os.walk(SRC):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def module_graph(files):
    """Module (path without extension) -> modules it imports."""
    stem = lambda p: os.path.splitext(p)[0]
    has_c = {stem(p) for p in files if p.endswith(".c")}
    direct = {p: includes(p) for p in files}

    def reach(header, seen):
        # a header-only file stands for what it includes
        if stem(header) in has_c or header in seen:
            return {stem(header)} if stem(header) in has_c else set()
        seen.add(header)
        out = set()
        for h in direct.get(header, []):
            out |= reach(h, seen)
        return out

    graph = {m: set() for m in has_c}
    for p in files:
        m = stem(p)
        if m not in has_c:
            continue
        for h in direct[p]:
            graph[m] |= reach(h, set())
        graph[m].discard(m)
    return graph


def cycles(graph):
    index, low, stack, on, found, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def rel(p):
    return os.path.relpath(p, ROOT)


def check_imports(files, problems):
    for comp in cycles(module_graph(files)):
        problems.append("import circle: " + " -> ".join(rel(m) for m in comp))
    for p in files:
        mine = layer_of(p)
        for h in includes(p):
            if not h.startswith(SRC + os.sep):
                continue
            theirs = layer_of(h)
            if theirs != mine and theirs not in LAYERS.get(mine, set()):
                problems.append(f"{rel(p)}: layer '{mine or 'main'}' imports {rel(h)} ('{theirs}')")


def nm_symbols(obj, defined):
    args = ["nm", "--defined-only" if defined else "--undefined-only", obj]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if defined and len(parts) == 3 and parts[1] in "TDBR":
            syms.add(parts[2])
        elif not defined and parts:
            syms.add(parts[-1])
    return syms


def check_commands(problems):
    cmd_src = os.path.join(SRC, "cmd")
    objs = [os.path.join(BUILD, "src", "cmd", f[:-2] + ".o")
            for f in sorted(os.listdir(cmd_src)) if f.endswith(".c")]
    missing = [o for o in objs if not os.path.exists(o)]
    if missing:
        problems.append(f"no objects to check in {rel(os.path.dirname(missing[0]))}: run make first")
        return
    defined = {o: nm_symbols(o, True) for o in objs}
    for o in objs:
        for sym in sorted(nm_symbols(o, False)):
            for other in objs:
                if other != o and sym in defined[other]:
                    problems.append(f"{rel(o)} uses {sym}, defined by {rel(other)}")


def main():
    files = list(sources())
    problems = []
    check_imports(files, problems)
    check_commands(problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)")
        return 1
    print(f"check-layers: {len(files)} files, no circle, layers kept, commands independent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
