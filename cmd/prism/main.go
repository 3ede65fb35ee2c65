// Command prism is the one binary of Prism: the dev stack, the ext_proc
// server, the control plane and the operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `prism — a data access gateway behind Envoy

Usage:
  prism dev      [flags]   run everything in one process: dev edge, ext_proc, control plane, SQLite
  prism extproc  [flags]   run the ext_proc gRPC server for Envoy
  prism xds      [flags]   run the control plane: ADS for Envoy and extproc, admin HTTP API
  prism policy test DIR    compile a Rego policy directory and run its unit tests ("-": built-in)
  prism policy push DIR    push a policy to the control plane, wait until extproc enforces it (--name, --admin)
  prism audit verify [FILE|DSN] check the hash chain of an audit log (default .prism/audit.log)
  prism certs    [flags]   write dev certificates: a CA, Envoy's server cert, SPIFFE client certs
  prism ns       apply|plan|diff -f FILE   declare namespaces (YAML or a descriptor set): plan, provision, show drift
  prism migrate  start|advance|promote|abort|status|backfill NS   move a KeyValue namespace to another backend
  prism keys rotate|list|reencrypt NS   PII data keys: add one, list them, move old values to the current one
  prism bench    [flags]   load-test extproc like Envoy does, against a no-op floor and the backend directly

Run "prism COMMAND -h" for the flags of a command.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "prism:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stderr)
	case "extproc":
		return runExtproc(ctx, args[1:], stderr)
	case "xds":
		return runXDS(ctx, args[1:], stderr)
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "certs":
		return runCerts(args[1:], stdout, stderr)
	case "ns":
		return runNS(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// newLogger makes the JSON logger every command uses.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
