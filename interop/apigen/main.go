// Command apigen lists every exported identifier of kcp-go (the version the
// chosen go.mod pins) with its type, compares each with kcpx's, and writes a
// test file that references every one of them in kcpx with kcp-go's type and
// value, so that the interop module stops compiling when kcpx drifts.
//
//	go run ./apigen -modfile go57.mod -out api_v576_test.go   # kcp-go v5.7.6
//	go run ./apigen -modfile go.mod -out api_v5672_test.go    # kcp-go v5.6.72
//
// Identifiers counted: package-level constants, variables, functions and
// types; the methods declared on each type; the exported fields of struct
// types; the methods of interface types. Types are compared as written in
// kcp-go's declarations, with kcp-go's package standing for kcpx's and
// parameter names ignored; constants also by value.
//
// It reads both packages' export data (go list -export), so it needs only
// the standard library.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/constant"
	"go/format"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"log"
	"os"
	"os/exec"
	"sort"
	"strings"
)

const (
	kcpgoPath = "github.com/xtaci/kcp-go/v5"
	kcpxPath  = "github.com/kcpx/kcp"
)

func main() {
	modfile := flag.String("modfile", "go.mod", "go.mod file of the interop module that pins kcp-go")
	out := flag.String("out", "", "test file to write (default: report only)")
	dir := flag.String("dir", ".", "interop module directory")
	flag.Parse()

	pkgs := load(*dir, *modfile)
	g, x := pkgs[kcpgoPath], pkgs[kcpxPath]
	ids := identifiers(g)
	version := kcpgoVersion(*dir, *modfile)

	same := 0
	for _, id := range ids {
		got, ok := lookup(x, id)
		switch {
		case !ok:
			fmt.Printf("missing   %s\n", id.name)
		case got != id.desc:
			fmt.Printf("differs   %s\n          kcp-go: %s\n          kcpx:   %s\n", id.name, id.desc, got)
		default:
			same++
		}
	}
	fmt.Printf("kcp-go %s: %d of %d exported identifiers exist in kcpx with the same type and value\n", version, same, len(ids))
	if *out != "" {
		src := generate(ids, version)
		if err := os.WriteFile(*out, src, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// load type-checks nothing itself: it imports kcp-go and kcpx from the
// export data the go command builds.
func load(dir, modfile string) map[string]*types.Package {
	cmd := exec.Command("go", "list", "-modfile="+modfile, "-export", "-deps", "-json=ImportPath,Export", kcpgoPath, kcpxPath)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		log.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	pkgs := map[string]*types.Package{}
	for _, path := range []string{kcpgoPath, kcpxPath} {
		p, err := imp.Import(path)
		if err != nil {
			log.Fatalf("import %s: %v", path, err)
		}
		pkgs[path] = p
	}
	return pkgs
}

func kcpgoVersion(dir, modfile string) string {
	cmd := exec.Command("go", "list", "-modfile="+modfile, "-m", "-f", "{{.Version}}", kcpgoPath)
	cmd.Dir = dir
	v, err := cmd.Output()
	if err != nil {
		log.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(v))
}

// ident is one exported identifier of kcp-go.
type ident struct {
	name string // "Dial", "UDPSession.TryRead", "Snmp.InPkts", "BlockCrypt.Encrypt"
	kind string // const, var, func, type, method, field, imethod
	desc string // kind, normalised type, and value or underlying type
	obj  types.Object
	recv *types.Named // for methods, fields and interface methods
}

func identifiers(p *types.Package) []ident {
	var ids []ident
	scope := p.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		ids = append(ids, describe(obj, nil))
		tn, ok := obj.(*types.TypeName)
		if !ok {
			continue
		}
		named := tn.Type().(*types.Named)
		for m := range named.Methods() {
			if m.Exported() {
				ids = append(ids, describe(m, named))
			}
		}
		switch u := named.Underlying().(type) {
		case *types.Struct:
			for f := range u.Fields() {
				if f.Exported() {
					ids = append(ids, describe(f, named))
				}
			}
		case *types.Interface:
			for m := range u.ExplicitMethods() {
				ids = append(ids, ident{name: name + "." + m.Name(), kind: "imethod", desc: "imethod " + typeString(m.Type()), obj: m, recv: named})
			}
		}
	}
	sort.SliceStable(ids, func(i, j int) bool { return ids[i].name < ids[j].name })
	return ids
}

func describe(obj types.Object, recv *types.Named) ident {
	name := obj.Name()
	if recv != nil {
		name = recv.Obj().Name() + "." + name
	}
	switch o := obj.(type) {
	case *types.Const:
		return ident{name: name, kind: "const", desc: "const " + typeString(o.Type()) + " = " + o.Val().ExactString(), obj: obj}
	case *types.Var:
		if recv != nil {
			return ident{name: name, kind: "field", desc: "field " + typeString(o.Type()), obj: obj, recv: recv}
		}
		return ident{name: name, kind: "var", desc: "var " + typeString(o.Type()), obj: obj}
	case *types.Func:
		if recv != nil {
			return ident{name: name, kind: "method", desc: "method " + typeString(o.Type()), obj: obj, recv: recv}
		}
		return ident{name: name, kind: "func", desc: "func " + typeString(o.Type()), obj: obj}
	case *types.TypeName:
		named := o.Type().(*types.Named)
		d := "type" + typeParams(named.TypeParams())
		switch u := named.Underlying().(type) {
		case *types.Struct:
			d += " struct" // fields are identifiers of their own
		case *types.Interface:
			d += " interface" // methods too
			_ = u
		default:
			d += " " + typeString(u)
		}
		return ident{name: name, kind: "type", desc: d, obj: obj}
	}
	log.Fatalf("unexpected object %v", obj)
	return ident{}
}

// lookup finds id in kcpx and describes it the same way.
func lookup(x *types.Package, id ident) (string, bool) {
	if id.recv == nil {
		obj := x.Scope().Lookup(id.obj.Name())
		if obj == nil {
			return "", false
		}
		return describe(obj, nil).desc, true
	}
	tn, ok := x.Scope().Lookup(id.recv.Obj().Name()).(*types.TypeName)
	if !ok {
		return "", false
	}
	named, ok := tn.Type().(*types.Named)
	if !ok {
		return "", false
	}
	switch id.kind {
	case "method":
		for m := range named.Methods() {
			if m.Name() == id.obj.Name() {
				return describe(m, named).desc, true
			}
		}
	case "field":
		if st, ok := named.Underlying().(*types.Struct); ok {
			for f := range st.Fields() {
				if f.Name() == id.obj.Name() {
					return describe(f, named).desc, true
				}
			}
		}
	case "imethod":
		if it, ok := named.Underlying().(*types.Interface); ok {
			for m := range it.ExplicitMethods() {
				if m.Name() == id.obj.Name() {
					return "imethod " + typeString(m.Type()), true
				}
			}
		}
	}
	return "", false
}

// typeString writes t with either library's package as "kcp", without
// parameter names, unexported named types of the library by name and
// underlying type (so a renamed or retyped callback type shows).
func typeString(t types.Type) string {
	var b strings.Builder
	writeType(&b, t, nil)
	return b.String()
}

func typeParams(l *types.TypeParamList) string {
	if l.Len() == 0 {
		return ""
	}
	var parts []string
	for tp := range l.TypeParams() {
		parts = append(parts, tp.Obj().Name()+" "+typeString(tp.Constraint()))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// writeType writes t; subst, when set, replaces type parameters by name.
func writeType(b *strings.Builder, t types.Type, subst map[string]string) {
	switch t := t.(type) {
	case *types.Alias:
		writeType(b, types.Unalias(t), subst)
	case *types.Basic:
		b.WriteString(t.Name())
	case *types.Pointer:
		b.WriteString("*")
		writeType(b, t.Elem(), subst)
	case *types.Slice:
		b.WriteString("[]")
		writeType(b, t.Elem(), subst)
	case *types.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		writeType(b, t.Elem(), subst)
	case *types.Map:
		b.WriteString("map[")
		writeType(b, t.Key(), subst)
		b.WriteString("]")
		writeType(b, t.Elem(), subst)
	case *types.Chan:
		switch t.Dir() {
		case types.SendRecv:
			b.WriteString("chan ")
		case types.SendOnly:
			b.WriteString("chan<- ")
		case types.RecvOnly:
			b.WriteString("<-chan ")
		}
		writeType(b, t.Elem(), subst)
	case *types.Signature:
		b.WriteString("func")
		writeTuple(b, t.Params(), t.Variadic(), subst)
		if r := t.Results(); r.Len() == 1 {
			b.WriteString(" ")
			writeType(b, r.At(0).Type(), subst)
		} else if r.Len() > 1 {
			b.WriteString(" ")
			writeTuple(b, r, false, subst)
		}
	case *types.Named:
		obj := t.Obj()
		if p := obj.Pkg(); p != nil {
			if p.Path() == kcpgoPath || p.Path() == kcpxPath {
				b.WriteString("kcp.")
			} else {
				b.WriteString(p.Name() + ".")
			}
		}
		b.WriteString(obj.Name())
		if args := t.TypeArgs(); args.Len() > 0 {
			b.WriteString("[")
			for i := range args.Len() {
				if i > 0 {
					b.WriteString(", ")
				}
				writeType(b, args.At(i), subst)
			}
			b.WriteString("]")
		} else if tps := t.TypeParams(); tps.Len() > 0 {
			b.WriteString("[")
			for i := range tps.Len() {
				if i > 0 {
					b.WriteString(", ")
				}
				writeType(b, tps.At(i), subst)
			}
			b.WriteString("]")
		}
		if p := obj.Pkg(); p != nil && !obj.Exported() && (p.Path() == kcpgoPath || p.Path() == kcpxPath) {
			b.WriteString("{")
			writeType(b, t.Underlying(), subst)
			b.WriteString("}")
		}
	case *types.TypeParam:
		if s, ok := subst[t.Obj().Name()]; ok {
			b.WriteString(s)
		} else {
			b.WriteString(t.Obj().Name())
		}
	case *types.Interface:
		if t.Empty() {
			b.WriteString("any")
			return
		}
		b.WriteString("interface{")
		for i := range t.NumMethods() {
			if i > 0 {
				b.WriteString("; ")
			}
			m := t.Method(i)
			b.WriteString(m.Name())
			writeType(b, m.Type(), subst)
		}
		b.WriteString("}")
	case *types.Struct:
		b.WriteString("struct{")
		for i := range t.NumFields() {
			if i > 0 {
				b.WriteString("; ")
			}
			f := t.Field(i)
			b.WriteString(f.Name() + " ")
			writeType(b, f.Type(), subst)
		}
		b.WriteString("}")
	default:
		log.Fatalf("unhandled type %T", t)
	}
}

func writeTuple(b *strings.Builder, tup *types.Tuple, variadic bool, subst map[string]string) {
	b.WriteString("(")
	for i := range tup.Len() {
		if i > 0 {
			b.WriteString(", ")
		}
		t := tup.At(i).Type()
		if variadic && i == tup.Len()-1 {
			b.WriteString("...")
			t = t.(*types.Slice).Elem()
		}
		writeType(b, t, subst)
	}
	b.WriteString(")")
}

// generate writes the test file: one declaration per identifier that
// compiles only if kcpx has it with kcp-go's type, and a test that checks
// the constants' values.
func generate(ids []ident, version string) []byte {
	tag := strings.NewReplacer(".", "", "v", "V").Replace(version)
	g := &gen{imports: map[string]string{kcpxPath: "kcp"}, tag: tag}
	var decls, consts bytes.Buffer
	for _, id := range ids {
		g.decl(&decls, &consts, id)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./apigen from %s %s; DO NOT EDIT.\n\n", kcpgoPath, version)
	b.WriteString("package interop\n\nimport (\n")
	paths := make([]string, 0, len(g.imports))
	for p := range g.imports {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if p == kcpxPath {
			fmt.Fprintf(&b, "\tkcp %q\n", p)
		} else {
			fmt.Fprintf(&b, "\t%q\n", p)
		}
	}
	b.WriteString("\t\"testing\"\n)\n\n")
	fmt.Fprintf(&b, "// The %d exported identifiers of kcp-go %s, each referenced in kcpx with\n", len(ids), version)
	b.WriteString("// kcp-go's type (a func literal of the same shape where kcp-go's type names an\n")
	b.WriteString("// unexported type): this file compiles only while kcpx has every one.\n")
	b.WriteString("// Generic identifiers are instantiated with int.\n")
	b.WriteString(decls.String())
	fmt.Fprintf(&b, "\n// TestAPIConstants%s checks that kcpx's constants have kcp-go %s's values.\n", tag, version)
	fmt.Fprintf(&b, "func TestAPIConstants%s(t *testing.T) {\n", tag)
	b.WriteString("\tfor _, c := range []struct {\n\t\tname      string\n\t\tgot, want any\n\t}{\n")
	b.WriteString(consts.String())
	b.WriteString("\t} {\n\t\tif c.got != c.want {\n\t\t\tt.Errorf(\"%s = %v, kcp-go has %v\", c.name, c.got, c.want)\n\t\t}\n\t}\n}\n")
	fmt.Fprintf(&b, "\n// apiIdentifiers%s is the number of identifiers this file references.\nconst apiIdentifiers%s = %d\n", tag, tag, len(ids))
	src, err := format.Source(b.Bytes())
	if err != nil {
		os.Stdout.Write(b.Bytes())
		log.Fatalf("format: %v", err)
	}
	return src
}

type gen struct {
	imports map[string]string // path -> name
	tag     string            // "V576": keeps helper names apart between files
	n       int
}

var intSubst = map[string]string{"T": "int"}

func (g *gen) decl(w, consts *bytes.Buffer, id ident) {
	fmt.Fprintf(w, "\n// %s: %s\n", id.name, id.desc)
	name := "kcp." + id.obj.Name()
	switch id.kind {
	case "const":
		c := id.obj.(*types.Const)
		if named, ok := c.Type().(*types.Named); ok {
			typ := g.src(named, nil)
			// x := keeps the constant's own type: an untyped one would
			// become int and not convert to kcp's named type implicitly.
			fmt.Fprintf(w, "var _ = func() %s { x := %s; return x }\n", typ, name)
			fmt.Fprintf(consts, "\t\t{%q, %s, %s(%s)},\n", id.name, name, typ, c.Val().ExactString())
		} else {
			// Only an untyped numeric constant converts to complex128 implicitly.
			fmt.Fprintf(w, "var _ complex128 = %s\n", name)
			got, want := constExprs(c)
			fmt.Fprintf(consts, "\t\t{%q, %s, %s},\n", id.name, got, want)
		}
	case "var":
		fmt.Fprintf(w, "var _ %s = %s\n", g.src(id.obj.Type(), nil), name)
	case "func":
		sig := id.obj.Type().(*types.Signature)
		ref, subst := name, map[string]string(nil)
		if sig.TypeParams().Len() > 0 {
			ref, subst = name+"[int]", intSubst
		}
		if hidden(sig) {
			g.wrapper(w, "", ref, sig, subst)
		} else {
			fmt.Fprintf(w, "var _ %s = %s\n", g.src(sig, subst), ref)
		}
	case "type":
		tn := id.obj.(*types.TypeName)
		named := tn.Type().(*types.Named)
		inst, subst := "kcp."+tn.Name(), map[string]string(nil)
		if named.TypeParams().Len() > 0 {
			inst, subst = inst+"[int]", intSubst
		}
		fmt.Fprintf(w, "var _ *%s\n", inst)
		switch named.Underlying().(type) {
		case *types.Struct, *types.Interface:
		default:
			g.n++
			fmt.Fprintf(w, "func underlying%s_%d[T ~%s]() {}\n\nvar _ = underlying%s_%d[%s]\n", g.tag, g.n, g.src(named.Underlying(), subst), g.tag, g.n, inst)
		}
		if it, ok := named.Underlying().(*types.Interface); ok {
			// A type with exactly kcp-go's methods must satisfy kcpx's
			// interface: kcpx may not demand more.
			g.n++
			fmt.Fprintf(w, "type only%s_%d struct{}\n\n", g.tag, g.n)
			for m := range it.Methods() {
				fmt.Fprintf(w, "func (only%s_%d) %s%s { panic(\"unused\") }\n\n", g.tag, g.n, m.Name(), strings.TrimPrefix(g.src(m.Type(), subst), "func"))
			}
			fmt.Fprintf(w, "var _ %s = only%s_%d{}\n", inst, g.tag, g.n)
		}
	case "method":
		sig := id.obj.Type().(*types.Signature)
		recvT := sig.Recv().Type()
		ptr := false
		if p, ok := recvT.(*types.Pointer); ok {
			ptr, recvT = true, p.Elem()
		}
		rnamed := recvT.(*types.Named)
		recv, subst := "kcp."+rnamed.Obj().Name(), map[string]string(nil)
		if rnamed.TypeParams().Len() > 0 {
			recv, subst = recv+"[int]", intSubst
		}
		if ptr {
			recv = "*" + recv
		}
		if hidden(sig) {
			g.wrapper(w, recv, id.obj.Name(), sig, subst)
			return
		}
		fn := strings.TrimPrefix(g.src(sig, subst), "func(")
		if sig.Params().Len() > 0 {
			fn = ", " + fn
		}
		expr := recv
		if ptr {
			expr = "(" + recv + ")"
		}
		fmt.Fprintf(w, "var _ func(%s%s = %s.%s\n", recv, fn, expr, id.obj.Name())
	case "field":
		fmt.Fprintf(w, "var _ = func(s *kcp.%s) *%s { return &s.%s }\n", id.recv.Obj().Name(), g.src(id.obj.Type(), nil), id.obj.Name())
	case "imethod":
		sig := id.obj.Type().(*types.Signature)
		fn := strings.TrimPrefix(g.src(sig, nil), "func(")
		if sig.Params().Len() > 0 {
			fn = ", " + fn
		}
		fmt.Fprintf(w, "var _ func(kcp.%s%s = kcp.%s.%s\n", id.recv.Obj().Name(), fn, id.recv.Obj().Name(), id.obj.Name())
	}
}

// constExprs spells an untyped constant of kcpx and kcp-go's value, both
// converted to the default type of an integer (int64) or left as they are.
func constExprs(c *types.Const) (got, want string) {
	if c.Val().Kind() == constant.Int {
		return "int64(kcp." + c.Name() + ")", "int64(" + c.Val().ExactString() + ")"
	}
	return "kcp." + c.Name(), c.Val().ExactString()
}

// hidden reports whether sig names an unexported type of kcp-go's package,
// which the test cannot spell.
func hidden(sig *types.Signature) bool {
	found := false
	var walk func(t types.Type)
	walk = func(t types.Type) {
		switch t := t.(type) {
		case *types.Named:
			if p := t.Obj().Pkg(); p != nil && p.Path() == kcpgoPath && !t.Obj().Exported() {
				found = true
			}
		case *types.Pointer:
			walk(t.Elem())
		case *types.Slice:
			walk(t.Elem())
		case *types.Signature:
			for v := range t.Params().Variables() {
				walk(v.Type())
			}
			for v := range t.Results().Variables() {
				walk(v.Type())
			}
		}
	}
	walk(sig)
	return found
}

// wrapper writes a func literal that calls the function or method with
// arguments of the same shape as kcp-go's parameters (its unexported types
// spelled as their underlying types), returning its results: it compiles
// when kcpx accepts what kcp-go accepts.
func (g *gen) wrapper(w *bytes.Buffer, recv, name string, sig *types.Signature, subst map[string]string) {
	var params, args []string
	if recv != "" {
		params = append(params, "r "+recv)
	}
	for i := range sig.Params().Len() {
		t := sig.Params().At(i).Type()
		arg := fmt.Sprintf("p%d", i)
		if sig.Variadic() && i == sig.Params().Len()-1 {
			params = append(params, arg+" ..."+g.src(t.(*types.Slice).Elem(), subst))
			arg += "..."
		} else {
			params = append(params, arg+" "+g.src(t, subst))
		}
		args = append(args, arg)
	}
	res := ""
	if r := sig.Results(); r.Len() > 0 {
		var rs []string
		for v := range r.Variables() {
			rs = append(rs, g.src(v.Type(), subst))
		}
		res = " (" + strings.Join(rs, ", ") + ")"
	}
	call := name + "(" + strings.Join(args, ", ") + ")"
	if recv != "" {
		call = "r." + call
	}
	ret := ""
	if res != "" {
		ret = "return "
	}
	fmt.Fprintf(w, "var _ = func(%s)%s { %s%s }\n", strings.Join(params, ", "), res, ret, call)
}

// src spells t as Go source in the test file: kcp-go's exported types as
// kcpx's, its unexported ones as their underlying type, type parameters
// substituted.
func (g *gen) src(t types.Type, subst map[string]string) string {
	switch t := t.(type) {
	case *types.Alias:
		return g.src(types.Unalias(t), subst)
	case *types.Basic:
		return t.Name()
	case *types.Pointer:
		return "*" + g.src(t.Elem(), subst)
	case *types.Slice:
		return "[]" + g.src(t.Elem(), subst)
	case *types.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), g.src(t.Elem(), subst))
	case *types.Map:
		return "map[" + g.src(t.Key(), subst) + "]" + g.src(t.Elem(), subst)
	case *types.Chan:
		return map[types.ChanDir]string{types.SendRecv: "chan ", types.SendOnly: "chan<- ", types.RecvOnly: "<-chan "}[t.Dir()] + g.src(t.Elem(), subst)
	case *types.Signature:
		var ps []string
		for i := range t.Params().Len() {
			v := t.Params().At(i)
			if t.Variadic() && i == t.Params().Len()-1 {
				ps = append(ps, "..."+g.src(v.Type().(*types.Slice).Elem(), subst))
			} else {
				ps = append(ps, g.src(v.Type(), subst))
			}
		}
		s := "func(" + strings.Join(ps, ", ") + ")"
		var rs []string
		for v := range t.Results().Variables() {
			rs = append(rs, g.src(v.Type(), subst))
		}
		switch len(rs) {
		case 0:
		case 1:
			s += " " + rs[0]
		default:
			s += " (" + strings.Join(rs, ", ") + ")"
		}
		return s
	case *types.Named:
		obj := t.Obj()
		p := obj.Pkg()
		var s string
		switch {
		case p == nil:
			s = obj.Name()
		case p.Path() == kcpgoPath && !obj.Exported():
			return g.src(t.Underlying(), subst)
		case p.Path() == kcpgoPath:
			s = "kcp." + obj.Name()
		default:
			g.imports[p.Path()] = p.Name()
			s = p.Name() + "." + obj.Name()
		}
		if args := t.TypeArgs(); args.Len() > 0 {
			var as []string
			for a := range args.Types() {
				as = append(as, g.src(a, subst))
			}
			s += "[" + strings.Join(as, ", ") + "]"
		} else if tps := t.TypeParams(); tps.Len() > 0 {
			var as []string
			for tp := range tps.TypeParams() {
				as = append(as, g.src(tp, subst))
			}
			s += "[" + strings.Join(as, ", ") + "]"
		}
		return s
	case *types.TypeParam:
		if s, ok := subst[t.Obj().Name()]; ok {
			return s
		}
		return t.Obj().Name()
	case *types.Interface:
		if t.Empty() {
			return "any"
		}
	}
	log.Fatalf("cannot spell %s in source", t)
	return ""
}
