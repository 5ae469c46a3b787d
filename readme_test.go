package kcp

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEUsageIsExample: the README's Usage snippet is the body of
// Example_usage (without its Output line), so the snippet compiles and runs
// whenever the tests do.
func TestREADMEUsageIsExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	r := string(readme)
	i := strings.Index(r, "\n## Usage\n")
	if i < 0 {
		t.Fatal("README has no Usage section")
	}
	r = r[i:]
	const open, imp = "```go\n", "import kcp \"github.com/kcpx/kcp\"\n\n"
	i = strings.Index(r, open)
	if i < 0 {
		t.Fatal("the Usage section has no Go snippet")
	}
	r = r[i+len(open):]
	snippet := r[:strings.Index(r, "```")]
	if !strings.HasPrefix(snippet, imp) {
		t.Fatalf("the snippet does not open with %q", imp)
	}
	snippet = strings.TrimPrefix(snippet, imp)

	e := string(src)
	const fn = "func Example_usage() {\n"
	i = strings.Index(e, fn)
	if i < 0 {
		t.Fatal("example_test.go has no Example_usage")
	}
	e = e[i+len(fn):]
	var body strings.Builder
	for _, line := range strings.Split(e[:strings.Index(e, "\n}\n")+1], "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "// Output:") {
			continue
		}
		body.WriteString(strings.TrimPrefix(line, "\t"))
		body.WriteByte('\n')
	}
	want := strings.TrimSuffix(body.String(), "\n")
	if snippet != want {
		t.Errorf("README Usage snippet differs from Example_usage:\n--- README\n%s\n--- example_test.go\n%s", snippet, want)
	}
}
