#!/usr/bin/env python3
"""Module import cycles in a crate's src/ at file-module granularity
(proxy/src/dns/udp.rs is `dns::udp`). Edges: `crate::a::b` and `super::x`
mentions outside `#[cfg(test)]`, resolved to the longest module path.

    python3 scripts/module-cycles.py proxy/src     # exit 1 on any cycle
"""
import os, re, sys
src = sys.argv[1]
files = {}
for root, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith('.rs'): continue
        rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel in (['main'], ['lib']): rel = []
        files['::'.join(rel)] = open(os.path.join(root, f)).read().split('#[cfg(test)]')[0]
mods = set(files)
def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        m = '::'.join(parts[:n])
        if m in mods: return m
    return None
edges = {m: set() for m in mods}
for m, text in files.items():
    text = re.sub(r'//.*', '', text)
    for p in re.findall(r'crate::((?:\w+::)*\w+)', text):
        t = resolve(p)
        if t is not None and t != m and not m.startswith(t + '::') and not t.startswith(m + '::'): edges[m].add(t)
    parent = m.rsplit('::', 1)[0] if '::' in m else ''
    for p in re.findall(r'super::((?:\w+::)*\w+)', text):
        t = resolve((parent + '::' if parent else '') + p)
        if t is not None and t != m and not m.startswith(t + '::') and not t.startswith(m + '::'): edges[m].add(t)
pairs = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
for a, b in pairs: print(f"{a} <-> {b}")
sys.setrecursionlimit(10000)
idx, low, st, on, comps, c = {}, {}, [], set(), [], [0]
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
        if len(comp) > 1: comps.append(comp)
for v in sorted(mods):
    if v not in idx: sc(v)
for comp in comps: print("cycle through:", sorted(comp))
if not pairs and not comps: print(f"{src}: no cycles")
else: sys.exit(1)
