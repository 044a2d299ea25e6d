#!/usr/bin/env python3
"""Finds cycles between the top-level modules of the crate.

Reads `src/**/*.rs` and builds, for the library (`src/lib.rs`) and for each
binary (`src/bin/<name>/main.rs`), a graph whose nodes are the top-level
modules (`src/plan/...` is `plan`) and whose edges are the paths that leave a
module: `crate::x` (grouped forms such as `crate::{x, y::z}` included) and
`super::` chains that climb to the crate root. Comments, string literals and
code under `#[cfg(test)]` are left out: a test may reach anywhere.

Every strongly connected component of more than one module is a cycle. The
script prints each one with the edges that make it and exits 1, unless every
one of those edges is listed in the allow-list (`scripts/module-cycles.allow`,
one `crate: from -> to` a line, `#` comments; there is none today); an allowed edge that no longer
exists is reported too, so the list only shrinks.

Usage: scripts/module_cycles.py [--graph] [--allow FILE]
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), or a lifetime ('a).
            m = re.match(r"'(\\.[^']*|[^'\\])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    """The index just past the brace that closes the one at `open_at`."""
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(text)


CFG_TEST = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*")


def drop_test_code(text):
    """Removes items under `#[cfg(test)]`; returns the text and the names of
    `#[cfg(test)] mod name;` files to skip."""
    skipped_files = []
    while True:
        m = CFG_TEST.search(text)
        if not m:
            return text, skipped_files
        start, k = m.start(), m.end()
        decl = re.match(r"(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text[k:])
        if decl:
            skipped_files.append(decl.group(1))
            end = k + decl.end()
        else:
            # The item ends at its first `;` outside braces, or its block.
            j = k
            while j < len(text) and text[j] not in "{;":
                j += 1
            end = matching_brace(text, j) if j < len(text) and text[j] == "{" else j + 1
        text = text[:start] + "\n" * text.count("\n", start, end) + text[end:]


def use_tree_heads(text, at):
    """The first segments of the items of a `{...}` use tree opening at `at`."""
    end = matching_brace(text, at)
    inner = text[at + 1:end - 1]
    heads, depth, item = [], 0, ""
    for c in inner + ",":
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            m = re.match(r"\s*(" + IDENT + r")", item)
            if m:
                heads.append(m.group(1))
            item = ""
        else:
            item += c
    return heads


INLINE_MOD = re.compile(r"\bmod\s+(" + IDENT + r")\s*\{")
PATH = re.compile(r"(?<![A-Za-z0-9_$])(crate|super)\s*::\s*")


def module_edges(path, mod_path, text):
    """The top-level modules that the code of one file names, besides its own."""
    text = strip_comments_and_strings(text)
    text, skipped = drop_test_code(text)
    # Inline modules deepen the path that `super::` climbs.
    spans = []
    for m in INLINE_MOD.finditer(text):
        open_at = m.end() - 1
        spans.append((open_at, matching_brace(text, open_at), m.group(1)))
    found = set()
    for m in PATH.finditer(text):
        depth = len(mod_path) + sum(1 for s, e, _ in spans if s < m.start() < e)
        k = m.end()
        if m.group(1) == "crate":
            level = 0
        else:
            supers = 1
            while True:
                n = re.match(r"super\s*::\s*", text[k:])
                if not n:
                    break
                supers, k = supers + 1, k + n.end()
            level = depth - supers
        if level != 0:
            continue
        if text[k:k + 1] == "{":
            found.update(use_tree_heads(text, k))
        else:
            n = re.match(IDENT, text[k:])
            if n:
                found.add(n.group(0))
    found.discard("self")
    return found, skipped


def crate_files(src_root):
    """Yields (file, module path) for a crate rooted at `src_root/{lib,main}.rs`."""
    for file in sorted(src_root.rglob("*.rs")):
        rel = file.relative_to(src_root)
        if rel.parts[0] == "bin" and src_root.name == "src":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        if parts in (["lib"], ["main"]):
            continue
        yield file, parts


def graph_of(src_root):
    """The module graph of one crate: {module: {module it names: [files]}}."""
    modules = set()
    for _, parts in crate_files(src_root):
        modules.add(parts[0])
    graph = {m: {} for m in modules}
    skip = set()
    files = list(crate_files(src_root))
    edges_of = {}
    for file, parts in files:
        found, skipped = module_edges(file, parts, file.read_text())
        edges_of[file] = (parts, found)
        for name in skipped:
            base = file.parent if file.stem in ("mod", "lib", "main") else file.with_suffix("")
            for cand in (base / (name + ".rs"), base / name / "mod.rs"):
                skip.add(cand)
    for file, (parts, found) in edges_of.items():
        if file in skip or any(p in skip for p in file.parents):
            continue
        for target in found:
            if target in modules and target != parts[0]:
                graph[parts[0]].setdefault(target, []).append(str(file.relative_to(ROOT)))
    return graph


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graph", action="store_true", help="print every edge")
    parser.add_argument("--allow", default=str(ROOT / "scripts" / "module-cycles.allow"))
    args = parser.parse_args()

    allowed = set()
    allow_file = Path(args.allow)
    if allow_file.exists():
        for line in allow_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allowed.add(re.sub(r"\s+", " ", line))

    crates = {"lib": ROOT / "src"}
    for main_rs in sorted((ROOT / "src" / "bin").glob("*/main.rs")):
        crates["bin " + main_rs.parent.name] = main_rs.parent

    failed, used = False, set()
    for name, src_root in crates.items():
        graph = graph_of(src_root)
        if args.graph:
            for v in sorted(graph):
                for w in sorted(graph[v]):
                    print(f"{name}: {v} -> {w}   ({', '.join(sorted(set(graph[v][w])))})")
        for comp in cycles(graph):
            members = set(comp)
            edges = [(v, w) for v in comp for w in sorted(graph[v]) if w in members]
            new = [(v, w) for v, w in edges if f"{name}: {v} -> {w}" not in allowed]
            used.update(f"{name}: {v} -> {w}" for v, w in edges)
            if new:
                failed = True
                print(f"{name}: a cycle among {', '.join(comp)}:")
                for v, w in edges:
                    mark = "" if (v, w) in new else "  (allowed)"
                    files = ", ".join(sorted(set(graph[v][w])))
                    print(f"  {v} -> {w}{mark}   ({files})")
    stale = sorted(allowed - used)
    if stale:
        failed = True
        print(f"{allow_file.name} allows edges that are in no cycle now; remove them:")
        for edge in stale:
            print(f"  {edge}")
    if not failed:
        print("no module cycles" + (" beyond the allowed edges" if used else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
