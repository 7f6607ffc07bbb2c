package httpapi

import (
	"context"
	"log/slog"
)

// LogHandler wraps h so that every record logged with a request's context carries
// that request's request_id and caller, wherever in the gateway it is logged (core,
// policy, store). Records logged without such a context pass through unchanged.
func LogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (c ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(logAttrsKey{}).([]slog.Attr); ok {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return c.Handler.Handle(ctx, r)
}

func (c ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ctxHandler{c.Handler.WithAttrs(attrs)}
}

func (c ctxHandler) WithGroup(name string) slog.Handler {
	return ctxHandler{c.Handler.WithGroup(name)}
}

type logAttrsKey struct{}

func withLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	return context.WithValue(ctx, logAttrsKey{}, attrs)
}
