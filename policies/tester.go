package policies

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego unit test (a rule named test_*).
type TestResult struct {
	// Package is the Rego package of the test, e.g. data.prism.authz_test.
	Package string
	// Name is the test rule's name.
	Name string
	// File is the module file of the test.
	File string
	// Line is the test's line in File.
	Line int
	// Pass is true when the test evaluated to true; Skip when it is named
	// todo_test_*.
	Pass, Skip bool
	// Err is the evaluation error, if any (a failed test has none).
	Err error
	// Duration is the test's evaluation time.
	Duration time.Duration
}

// String is one line as `opa test` prints it: package.name: PASS (1ms).
func (r TestResult) String() string {
	outcome := "PASS"
	switch {
	case r.Skip:
		outcome = "SKIPPED"
	case r.Err != nil:
		outcome = "ERROR: " + r.Err.Error()
	case !r.Pass:
		outcome = "FAIL"
	}
	return fmt.Sprintf("%s:%d: %s.%s: %s (%s)", r.File, r.Line, r.Package, r.Name, outcome, r.Duration.Round(time.Microsecond))
}

// Failed reports whether the test failed or could not be evaluated.
func (r TestResult) Failed() bool {
	return !r.Skip && (!r.Pass || r.Err != nil)
}

// RunTests compiles all modules, tests included, and runs every Rego unit
// test with OPA's tester. Results are sorted by file and line. The error is set
// when the modules do not compile; failing tests are results, not errors.
func RunTests(ctx context.Context, modules map[string]string) ([]TestResult, error) {
	parsed, err := parse(modules, true)
	if err != nil {
		return nil, err
	}
	ch, err := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(parsed).
		RaiseBuiltinErrors(true).
		SetTimeout(10*time.Second).
		RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("policies: compile: %w", err)
	}
	var results []TestResult
	for r := range ch {
		tr := TestResult{
			Package:  r.Package,
			Name:     r.Name,
			Pass:     r.Pass(),
			Skip:     r.Skip,
			Err:      r.Error,
			Duration: r.Duration,
		}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		results = append(results, tr)
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("policies: tests: %w", err)
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Name < b.Name
	})
	return results, nil
}
