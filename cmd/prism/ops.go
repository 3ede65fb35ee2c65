package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/policies"
)

// runPolicy runs the operator's policy commands. `prism policy test DIR`
// compiles the Rego files of DIR (the embedded defaults when DIR is "-") and
// runs their *_test.rego unit tests, as the control plane does before it
// accepts a policy; `prism policy push DIR` sends them to the control plane
// (see policy_push.go).
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "push" {
		return runPolicyPush(ctx, args[1:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: prism policy test DIR | prism policy push DIR [--name NAME]   (DIR \"-\": the built-in policy)")
		return flag.ErrHelp
	}
	modules := policies.Default()
	if args[1] != "-" {
		var err error
		if modules, err = policies.LoadDir(args[1]); err != nil {
			return err
		}
	}
	if _, err := policies.Compile(ctx, modules); err != nil {
		return err
	}
	results, err := policies.RunTests(ctx, modules)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		fmt.Fprintln(stdout, r.String())
		if r.Failed() {
			failed++
		}
	}
	if len(results) == 0 {
		return fmt.Errorf("policy test: no tests found in %s", args[1])
	}
	if failed > 0 {
		return fmt.Errorf("policy test: %d of %d tests failed", failed, len(results))
	}
	fmt.Fprintf(stdout, "%d tests passed\n", len(results))
	return nil
}

// runAudit runs `prism audit verify [FILE|DSN]`: it checks the hash chain of
// an audit log (safe on a live log) and names the first broken record (its
// line in a file, its row id in a database).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: prism audit verify [FILE|DSN]   (default .prism/audit.log; a .db path, sqlite://PATH or postgres://DSN is a database log)")
		return flag.ErrHelp
	}
	path := ".prism/audit.log"
	if len(args) > 1 {
		path = args[1]
	}
	n, err := audit.VerifySpec(ctx, path)
	if err != nil {
		return fmt.Errorf("audit verify %s: %d records intact, then: %w", redactDSN(path), n, err)
	}
	fmt.Fprintf(stdout, "%s: %d records, hash chain intact\n", redactDSN(path), n)
	return nil
}

// redactDSN hides a password in a database URL before it is printed.
func redactDSN(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return spec
}
