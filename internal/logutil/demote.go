// Package logutil holds slog handlers the host puts around its logger.
package logutil

import (
	"context"
	"log/slog"
)

// Demote returns a handler that logs every record of h's at its level minus
// by (by 4: ERROR becomes WARN, WARN INFO, INFO DEBUG). A library's
// internal chatter (protoactor's dead letters and restarts, memberlist's
// probes) goes through it, so it shows only when the user asks for more
// than their own level.
func Demote(h slog.Handler, by slog.Level) slog.Handler { return demote{h, by} }

type demote struct {
	next slog.Handler
	by   slog.Level
}

func (d demote) Enabled(ctx context.Context, l slog.Level) bool { return d.next.Enabled(ctx, l-d.by) }

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	r.Level -= d.by
	return d.next.Handle(ctx, r)
}

func (d demote) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demote{d.next.WithAttrs(attrs), d.by}
}

func (d demote) WithGroup(name string) slog.Handler { return demote{d.next.WithGroup(name), d.by} }
