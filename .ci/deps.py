#!/usr/bin/env python3
"""The import rules of docs/ARCHITECTURE.md, checked from the `crate::`/`super::`
paths in src/ (outside tests): no import circles between files, and no import
against the direction chat <- settings <- store <- layers <- providers <- config
<- stack. Exits 1 on a violation.

usage: deps.py SRC_DIR [file|unit] [-v]   (-v prints the graph)"""
import os, re, sys
from collections import defaultdict
src = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "unit"
def modpath(f):
    rel = os.path.relpath(f, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"): rel = rel[:-1]
    return rel
TOPS2 = {"layers", "providers"}  # units are layers::X, providers::X
def unit(p):
    if not p: return "root"
    if mode == "file": return "::".join(p)
    if p[0] in TOPS2 and len(p) > 1: return p[0] + "::" + p[1]
    return p[0]
def expand(s):
    # expand `a::{b, c::{d}}` groups into paths
    s = re.sub(r"\s+", "", s)
    out = []
    def rec(prefix, body):
        depth = 0; cur = ""; parts = []
        for ch in body:
            if ch == "{": depth += 1
            if ch == "}": depth -= 1
            if ch == "," and depth == 0: parts.append(cur); cur = ""
            else: cur += ch
        if cur: parts.append(cur)
        for part in parts:
            m = re.match(r"^([^{]*?)(?:::)?\{(.*)\}$", part)
            if m: rec(prefix + [x for x in m.group(1).split("::") if x], m.group(2))
            else: out.append(prefix + [x for x in part.split("::") if x])
    rec([], s)
    return out
edges = defaultdict(set)
for root, _, files in os.walk(src):
    if "bin" in root.split(os.sep): continue
    for fn in files:
        if not fn.endswith(".rs"): continue
        f = os.path.join(root, fn); me = modpath(f)
        text = open(f).read()
        text = re.sub(r"//[^\n]*", "", text)
        # drop #[cfg(test)] mod tests { ... } roughly: ignore files named tests/proptests
        if fn in ("tests.rs", "proptests.rs"): continue
        cut = text.find("#[cfg(test)]\nmod tests")
        if cut >= 0: text = text[:cut]
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            paths += expand(m.group(1))
        for m in re.finditer(r"\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            paths.append(m.group(1).split("::"))
        is_mod = fn == "mod.rs"
        for p in paths:
            if not p: continue
            if p[0] == "crate": tgt = p[1:]
            elif p[0] == "super":
                base = me[:] if is_mod else me[:-1]
                # for mod.rs, super is parent of folder
                if is_mod: base = me[:-1]
                q = p[:]
                while q and q[0] == "super":
                    q = q[1:]
                    if q and q[0] == "super": base = base[:-1]
                tgt = base + q
            else: continue
            # resolve tgt to an existing module path prefix
            best = []
            for i in range(len(tgt), 0, -1):
                cand = os.path.join(src, *tgt[:i])
                if os.path.isdir(cand) or os.path.isfile(cand + ".rs"): best = tgt[:i]; break
            a, b = unit(me), unit(best)
            if a != b and best: edges[a].add(b)
nodes = set(edges) | {b for v in edges.values() for b in v}
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(nodes):
    if v not in idx: sc(v)
if "-v" in sys.argv:
    for a in sorted(edges): print(a, "->", ", ".join(sorted(edges[a])))
print(f"{len(sccs)} import circles ({mode} level)")
for comp in sccs: print("  circle:", " <-> ".join(comp))
# Imports against the direction, between the folders.
FORBIDDEN = {
    "chat": ("settings", "store", "layers", "providers", "config", "stack", "server", "mock"),
    "settings": ("store", "layers", "providers", "config", "stack", "server"),
    "store": ("layers", "providers", "config", "stack", "server"),
    "layers": ("providers", "config", "stack", "server", "mock"),
    "providers": ("config", "stack", "server"),
}
wrong = []
for a in sorted(edges):
    for b in sorted(edges[a]):
        top_a, top_b = a.split("::")[0], b.split("::")[0]
        if top_b in FORBIDDEN.get(top_a, ()):
            wrong.append(f"{a} -> {b}")
for w in wrong: print("  against the direction:", w)
sys.exit(1 if sccs or wrong else 0)
