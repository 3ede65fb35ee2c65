package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// addLogFormatFlag adds --log-format: JSON (the default, for log
// pipelines) or text (for a terminal).
func addLogFormatFlag(fs *flag.FlagSet) *string {
	return fs.String("log-format", "json", "json or text")
}

// newFormatLogger is newLogger with a --log-format.
func newFormatLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	switch format {
	case "json", "":
		return newLogger(w, level)
	case "text":
		var l slog.Level
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("--log-level: %w", err)
		}
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}
