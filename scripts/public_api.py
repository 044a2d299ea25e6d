#!/usr/bin/env python3
"""The crate's public API as a sorted text listing, from rustdoc's JSON.

Reads the JSON that `cargo rustdoc --lib -- -Z unstable-options
--output-format json --document-hidden-items` writes (target/doc/schedule_sync.json) and prints one
line per public item: modules, types with their public fields and variants,
functions and methods with their signatures, constants, trait impls, and
re-exports of other crates' items. Items hidden from the documentation
(`#[doc(hidden)]`) are not part of the API and do not show.

It exits 1, and says where, when a signature names a type of a crate that
must not show in the API (tonic, prost, the Temporal client's protobuf types),
or a type of this crate that the documented API does not reach.

Usage: public_api.py JSON_FILE
"""

import json
import sys

# Crates whose types must never be part of the public API.
FORBIDDEN = {"tonic", "prost", "prost_types", "prost_wkt_types", "temporalio_common",
             "temporalio_client"}


class Api:
    def __init__(self, doc):
        self.doc = doc
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.crates = {str(k): v["name"] for k, v in doc.get("external_crates", {}).items()}
        self.crates["0"] = doc["index"][str(doc["root"])]["name"]
        # The public path of each local item, as the walk reaches it.
        self.public = {}
        self.lines = set()
        self.forbidden = []
        # Local types that signatures name but the documented API does not
        # reach (found on the second pass).
        self.unreached = []
        self.second_pass = False

    # ---- names ----------------------------------------------------------

    def path_of(self, item_id):
        item_id = str(item_id)
        if item_id in self.public:
            return self.public[item_id]
        summary = self.paths.get(item_id)
        if summary:
            return "::".join(summary["path"])
        return None

    def crate_of(self, item_id):
        summary = self.paths.get(str(item_id))
        if summary is None:
            return None
        return self.crates.get(str(summary["crate_id"]), summary["path"][0])

    # ---- types ----------------------------------------------------------

    def ty(self, t, where):
        if t is None:
            return "()"
        if isinstance(t, str):
            return t
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.resolved(v, where)
        if kind == "generic":
            return v
        if kind == "primitive":
            return v
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x, where) for x in v) + ("," if len(v) == 1 else "") + ")"
        if kind == "slice":
            return "[" + self.ty(v, where) + "]"
        if kind == "array":
            return "[" + self.ty(v["type"], where) + "; " + str(v["len"]) + "]"
        if kind == "borrowed_ref":
            life = (v.get("lifetime") + " ") if v.get("lifetime") else ""
            mut = "mut " if v.get("is_mutable") else ""
            return "&" + life + mut + self.ty(v["type"], where)
        if kind == "raw_pointer":
            return ("*mut " if v.get("is_mutable") else "*const ") + self.ty(v["type"], where)
        if kind == "impl_trait":
            return "impl " + " + ".join(self.bound(b, where) for b in v)
        if kind == "dyn_trait":
            parts = [self.poly_trait(p, where) for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if kind == "qualified_path":
            self_ty = self.ty(v["self_type"], where)
            if v.get("trait"):
                return "<" + self_ty + " as " + self.resolved(v["trait"], where) + ">::" + v["name"]
            return self_ty + "::" + v["name"]
        if kind == "function_pointer":
            sig = v["sig"]
            inputs = ", ".join(self.ty(x[1], where) for x in sig["inputs"])
            out = sig.get("output")
            return "fn(" + inputs + ")" + (" -> " + self.ty(out, where) if out else "")
        if kind == "infer":
            return "_"
        return "<" + kind + ">"

    def resolved(self, p, where):
        item_id = p.get("id")
        name = p.get("path") or p.get("name")
        full = self.path_of(item_id) if item_id is not None else None
        crate = self.crate_of(item_id) if item_id is not None else None
        if crate in FORBIDDEN:
            self.forbidden.append((where, full or name))
        if self.second_pass and crate == self.crates["0"] and str(item_id) not in self.public \
                and str(item_id) in self.index:
            self.unreached.append((where, full or name))
        text = full or name
        args = p.get("args")
        if args:
            text += self.generic_args(args, where)
        return text

    def generic_args(self, args, where):
        if "angle_bracketed" in args:
            a = args["angle_bracketed"]
            parts = []
            for arg in a.get("args", []):
                if isinstance(arg, str):
                    parts.append("_")
                    continue
                (k, v), = arg.items()
                if k == "type":
                    parts.append(self.ty(v, where))
                elif k == "lifetime":
                    parts.append(v)
                elif k == "const":
                    parts.append(str(v.get("expr", v)))
                else:
                    parts.append("_")
            for c in a.get("constraints", []) or a.get("bindings", []):
                binding = c.get("binding", {})
                if "equality" in binding:
                    eq = binding["equality"]
                    value = self.ty(eq["type"], where) if isinstance(eq, dict) and "type" in eq else str(eq)
                    parts.append(c["name"] + " = " + value)
                elif "constraint" in binding:
                    parts.append(c["name"] + ": " + " + ".join(self.bound(b, where) for b in binding["constraint"]))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            a = args["parenthesized"]
            text = "(" + ", ".join(self.ty(x, where) for x in a["inputs"]) + ")"
            if a.get("output"):
                text += " -> " + self.ty(a["output"], where)
            return text
        return ""

    def poly_trait(self, p, where):
        return self.resolved(p["trait"], where)

    def bound(self, b, where):
        if isinstance(b, str):
            return b
        (k, v), = b.items()
        if k == "trait_bound":
            modifier = "?" if v.get("modifier") == "maybe" else ""
            return modifier + self.resolved(v["trait"], where)
        if k == "outlives":
            return v
        if k == "use":
            return "use<..>"
        return "<" + k + ">"

    def generics(self, g, where):
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "lifetime" in kind:
                params.append(p["name"])
            elif "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue
                bounds = kind["type"].get("bounds", [])
                params.append(p["name"] + (": " + " + ".join(self.bound(b, where) for b in bounds) if bounds else ""))
            elif "const" in kind:
                params.append("const " + p["name"] + ": " + self.ty(kind["const"]["type"], where))
        return "<" + ", ".join(params) + ">" if params else ""

    def where_clause(self, g, where):
        preds = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(self.ty(bp["type"], where) + ": " + " + ".join(self.bound(b, where) for b in bp["bounds"]))
        return " where " + ", ".join(preds) if preds else ""

    # ---- items ----------------------------------------------------------

    @staticmethod
    def hidden(item):
        """Whether the item is `#[doc(hidden)]`: not part of the API."""
        return any("doc(hidden)" in (a if isinstance(a, str) else json.dumps(a)).replace(" ", "")
                   for a in item.get("attrs", []))

    @staticmethod
    def attrs(item):
        out = []
        for a in item.get("attrs", []):
            if isinstance(a, str):
                if "non_exhaustive" in a:
                    out.append("#[non_exhaustive]")
                elif a.startswith("#[must_use"):
                    out.append("#[must_use]")
            elif isinstance(a, dict):
                if "non_exhaustive" in a:
                    out.append("#[non_exhaustive]")
                elif "must_use" in a:
                    out.append("#[must_use]")
                elif "other" in a and "non_exhaustive" in str(a["other"]):
                    out.append("#[non_exhaustive]")
        return (" ".join(out) + " ") if out else ""

    def emit(self, line):
        self.lines.add(line)

    def function(self, item, path, where=None):
        f = item["inner"]["function"]
        where = where or path
        header = f.get("header", {})
        quals = ""
        if header.get("is_const"):
            quals += "const "
        if header.get("is_async"):
            quals += "async "
        if header.get("is_unsafe"):
            quals += "unsafe "
        sig = f["sig"]
        inputs = []
        for name, t in sig["inputs"]:
            if name == "self":
                rendered = self.ty(t, where)
                inputs.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(rendered, "self: " + rendered))
            else:
                inputs.append(name + ": " + self.ty(t, where))
        out = sig.get("output")
        text = (self.attrs(item) + "pub " + quals + "fn " + path + self.generics(f["generics"], where)
                + "(" + ", ".join(inputs) + ")" + (" -> " + self.ty(out, where) if out else "")
                + self.where_clause(f["generics"], where))
        self.emit(text)

    def walk_module(self, module_id, path):
        item = self.index[str(module_id)]
        for child in item["inner"]["module"]["items"]:
            self.item(child, path)

    def item(self, item_id, parent, name=None):
        item_id = str(item_id)
        item = self.index.get(item_id)
        if item is None:
            return
        if self.hidden(item):
            return
        inner_kind, inner = next(iter(item["inner"].items()))
        if inner_kind == "use":
            target = inner.get("id")
            if inner.get("is_glob"):
                if target is not None and str(target) in self.index:
                    self.walk_module(target, parent)
                return
            if target is not None and str(target) in self.index:
                self.item(target, parent, name=inner["name"])
            else:
                full = self.path_of(target) if target is not None else inner["source"]
                self.emit("pub use " + parent + "::" + inner["name"] + " = " + (full or inner["source"]))
            return
        if item.get("visibility") != "public" and inner_kind not in ("variant", "struct_field"):
            return
        name = name or item["name"]
        path = parent + "::" + name
        self.public.setdefault(item_id, path)
        if inner_kind == "module":
            self.emit("pub mod " + path)
            self.walk_module(item_id, path)
        elif inner_kind == "struct":
            self.struct(item, inner, path)
        elif inner_kind == "enum":
            self.enum(item, inner, path)
        elif inner_kind == "trait":
            self.trait(item, inner, path)
        elif inner_kind == "function":
            self.function(item, path)
        elif inner_kind in ("constant", "static"):
            t = inner.get("type")
            self.emit("pub " + ("const " if inner_kind == "constant" else "static ") + path + ": " + self.ty(t, path))
        elif inner_kind == "type_alias":
            self.emit("pub type " + path + self.generics(inner["generics"], path) + " = " + self.ty(inner["type"], path))
        elif inner_kind == "macro":
            self.emit("macro " + path)
        else:
            self.emit("pub " + inner_kind + " " + path)

    def struct(self, item, s, path):
        kind = s["kind"]
        g = self.generics(s["generics"], path)
        self.emit(self.attrs(item) + "pub struct " + path + g + self.where_clause(s["generics"], path))
        fields = []
        if isinstance(kind, dict) and "plain" in kind:
            fields = kind["plain"]["fields"]
        elif isinstance(kind, dict) and "tuple" in kind:
            fields = [f for f in kind["tuple"] if f is not None]
        for field_id in fields:
            field = self.index[str(field_id)]
            if field.get("visibility") != "public" or self.hidden(field):
                continue
            self.emit("pub " + path + "::" + field["name"] + ": " + self.ty(field["inner"]["struct_field"], path))
        self.impls(s.get("impls", []), path)

    def enum(self, item, e, path):
        self.emit(self.attrs(item) + "pub enum " + path + self.generics(e["generics"], path))
        for variant_id in e["variants"]:
            variant = self.index[str(variant_id)]
            if self.hidden(variant):
                continue
            vkind = variant["inner"]["variant"]["kind"]
            vpath = path + "::" + variant["name"]
            if vkind == "plain":
                self.emit(self.attrs(variant) + "pub " + vpath)
            elif "tuple" in vkind:
                types = [self.ty(self.index[str(f)]["inner"]["struct_field"], vpath) if f is not None else "_"
                         for f in vkind["tuple"]]
                self.emit(self.attrs(variant) + "pub " + vpath + "(" + ", ".join(types) + ")")
            elif "struct" in vkind:
                self.emit(self.attrs(variant) + "pub " + vpath + " { .. }")
                for f in vkind["struct"]["fields"]:
                    field = self.index[str(f)]
                    self.emit("pub " + vpath + "::" + field["name"] + ": " + self.ty(field["inner"]["struct_field"], vpath))
        self.impls(e.get("impls", []), path)

    def trait(self, item, t, path):
        bounds = t.get("bounds", [])
        sealed = ""
        self.emit(self.attrs(item) + "pub " + ("unsafe " if t.get("is_unsafe") else "") + "trait " + path
                  + self.generics(t["generics"], path)
                  + (": " + " + ".join(self.bound(b, path) for b in bounds) if bounds else "") + sealed)
        for member_id in t["items"]:
            member = self.index.get(str(member_id))
            if member is None or self.hidden(member):
                continue
            kind, inner = next(iter(member["inner"].items()))
            mpath = path + "::" + member["name"]
            if kind == "function":
                self.function(member, mpath)
            elif kind == "assoc_type":
                b = inner.get("bounds", [])
                self.emit("pub type " + mpath + (": " + " + ".join(self.bound(x, mpath) for x in b) if b else ""))
            elif kind == "assoc_const":
                self.emit("pub const " + mpath + ": " + self.ty(inner["type"], mpath))
        for impl_id in t.get("implementations", []):
            impl = self.index.get(str(impl_id))
            if impl is None:
                continue
            self.emit("impl " + path + " for " + self.ty(impl["inner"]["impl"]["for"], path))

    def impls(self, impl_ids, path):
        for impl_id in impl_ids:
            impl_item = self.index.get(str(impl_id))
            if impl_item is None or self.hidden(impl_item):
                continue
            impl = impl_item["inner"]["impl"]
            if impl.get("blanket_impl") is not None:
                continue
            g = self.generics(impl["generics"], path)
            if impl.get("trait") is None:
                for member_id in impl["items"]:
                    member = self.index.get(str(member_id))
                    if member is None or member.get("visibility") != "public" or self.hidden(member):
                        continue
                    kind, inner = next(iter(member["inner"].items()))
                    for_ty = self.ty(impl["for"], path)
                    mpath = for_ty + "::" + member["name"]
                    if kind == "function":
                        self.function(member, mpath, where=path)
                    elif kind == "assoc_const":
                        self.emit("pub const " + mpath + ": " + self.ty(inner["type"], path))
            else:
                neg = "!" if impl.get("is_negative") else ""
                self.emit("impl" + g + " " + neg + self.resolved(impl["trait"], path) + " for "
                          + self.ty(impl["for"], path) + self.where_clause(impl["generics"], path))


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    api = Api(doc)
    root = doc["index"][str(doc["root"])]
    # Two passes: the first learns every item's public path, so that
    # signatures name types by the path a host uses.
    api.walk_module(doc["root"], root["name"])
    api.lines.clear()
    api.forbidden.clear()
    api.second_pass = True
    api.walk_module(doc["root"], root["name"])
    for line in sorted(api.lines):
        print(line)
    for where, what in sorted(set(api.forbidden)):
        print(f"the public API names {what} (in {where}): no tonic, prost or Temporal protobuf type may show",
              file=sys.stderr)
    for where, what in sorted(set(api.unreached)):
        print(f"the public API names {what} (in {where}), which a host cannot reach: export it or hide its user",
              file=sys.stderr)
    if api.forbidden or api.unreached:
        sys.exit(1)


if __name__ == "__main__":
    main()
