package server

import (
	"context"
	"fmt"
	"log/slog"
)

// cpLogger adapts slog to go-control-plane's logger. The library logs every
// watch it opens and every no-op notification at Info; those are debug
// detail for Prism's operators.
type cpLogger struct{ log *slog.Logger }

// Debugf implements log.Logger.
func (l cpLogger) Debugf(format string, args ...any) { l.at(slog.LevelDebug, format, args) }

// Infof implements log.Logger, at debug level (see cpLogger).
func (l cpLogger) Infof(format string, args ...any) { l.at(slog.LevelDebug, format, args) }

// Warnf implements log.Logger.
func (l cpLogger) Warnf(format string, args ...any) { l.at(slog.LevelWarn, format, args) }

// Errorf implements log.Logger.
func (l cpLogger) Errorf(format string, args ...any) { l.at(slog.LevelError, format, args) }

func (l cpLogger) at(level slog.Level, format string, args []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "go-control-plane")
}
