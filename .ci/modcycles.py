#!/usr/bin/env python3
"""Reports import cycles in the crate's module graph; exits 1 if there are any.

Two graphs are checked: between the crate's top-level modules (`proxy`, `shape`, `config`, ...),
and between the submodules of each of `proxy`, `shape` and `retry` (`proxy::stack`,
`proxy::frontdoor`, ...). An edge A -> B means some file of A names a path into B: a `use` of
`crate::`, `super::` or `self::`, or such a path written inline. Test code counts too (a cycle
through a test helper is still a cycle). Comments are ignored, so doc links do not count. The leaf modules
(LEAVES) must import nothing of the crate but what LEAVES allows them.

A path to an item that the parent module re-exports (`pub use self::key::LimitKey` in
`shape.rs`) is followed to the submodule that defines it. Items defined in a parent module file
itself (`proxy.rs`) are not a node of the submodule graph: a child naming its parent is how Rust
modules nest.

Usage: .ci/modcycles.py [src dir]  (default: src next to this script's parent)
"""

import os
import re
import sys

# Submodules whose graphs are checked too.
NESTED = ("proxy", "shape", "retry")
# Leaf modules and the only crate modules each may import.
LEAVES = {"error": set(), "exchange": {"error"}}
# Binary-only and tooling modules that the library's graph does not include.
SKIP_FILES = {"main.rs"}


def module_path(src, file):
    rel = os.path.relpath(file, src)[: -len(".rs")].split(os.sep)
    if rel in (["lib"], ["main"]):
        return []
    return rel[:-1] + ([] if rel[-1] == "mod" else [rel[-1]])


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in filter(None, parts):
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                walk(prefix + part[:brace], part[brace + 1 : -1])
            else:
                out.append(prefix + part.split(" as ")[0])

    walk("", tree)
    return out


def paths_in(text):
    """Every `crate::`/`super::`/`self::` path in `text`, as a list of segments."""
    found = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", text):
        found += expand_use(m.group(1))
    rest = re.sub(r"\buse\s+[^;]*;", "", text)
    found += re.findall(r"\b(?:crate|super)(?:::\w+)+", rest)
    return [p.split("::") for p in found]


def resolve(here, segs):
    """Absolute module path (with the item name last) of `segs` written in module `here`."""
    if segs[0] == "crate":
        return segs[1:]
    base = list(here)
    while segs and segs[0] in ("super", "self"):
        if segs[0] == "super":
            base = base[:-1]
        segs = segs[1:]
    return base + segs


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs") and not (root == src and name in SKIP_FILES):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    files[path] = (module_path(src, path), strip_comments(f.read()))
    modules = {tuple(m) for m, _ in files.values() if m}
    # Re-exports in parent files: (parent..., item) -> defining child path.
    reexports = {}
    for mod, text in files.values():
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+((?:self|super|crate)::[^;]*);", text):
            for p in expand_use(m.group(1)):
                segs = resolve(mod, p.split("::"))
                reexports[tuple(mod + [segs[-1]])] = segs[:-1]

    def target(segs):
        segs = list(segs)
        for _ in range(4):
            key = tuple(segs)
            if key in reexports and reexports[key] != segs[:-1]:
                segs = reexports[key] + [segs[-1]]
                continue
            break
        # The longest prefix that is a module (the rest are items).
        for n in range(len(segs), 0, -1):
            if tuple(segs[:n]) in modules:
                return segs[:n]
        # Not a path into a module of the crate: an inline module's `super::*` read as the
        # file's parent, or a crate-root item (`crate::BoxError`), which is a re-export.
        return None

    top, nested = {}, {}
    for mod, text in files.values():
        if not mod:
            continue
        for segs in paths_in(text):
            to = target(resolve(mod, segs))
            if not to:
                continue
            if to[0] != mod[0]:
                top.setdefault(mod[0], set()).add(to[0])
            elif len(mod) > 1 and len(to) > 1 and mod[1] != to[1] and mod[0] in NESTED:
                nested.setdefault(f"{mod[0]}::{mod[1]}", set()).add(f"{to[0]}::{to[1]}")

    failed = False
    for leaf, allowed in LEAVES.items():
        extra = top.get(leaf, set()) - allowed
        if extra:
            failed = True
            print(f"leaf module {leaf} imports {', '.join(sorted(extra))}")
    for name, graph in (("top-level modules", top), ("submodules of " + ", ".join(NESTED), nested)):
        cycles = find_cycles(graph)
        if cycles:
            failed = True
            print(f"import cycles between {name}:")
            for members, cycle in cycles:
                print(f"  {', '.join(members)}; e.g. " + " -> ".join(cycle + [cycle[0]]))
        else:
            print(f"no import cycles between {name} ({len(graph)} modules with imports)")
    sys.exit(1 if failed else 0)


def find_cycles(graph):
    """Each strongly connected component of more than one module (Tarjan), and a cycle in it."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [(c, shortest_cycle(graph, set(c), c[0])) for c in comps]


def shortest_cycle(graph, comp, start):
    """The shortest cycle through `start` within `comp`, by breadth-first search."""
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1]
                if w in comp and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
