package logutil

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDemoteLowersEveryLevel(t *testing.T) {
	var buf bytes.Buffer
	base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	l := slog.New(Demote(base, 4)).With("lib", "x")
	l.Info("chatter")    // becomes DEBUG: below INFO, dropped
	l.Warn("noteworthy") // becomes INFO
	l.Error("failure")   // becomes WARN
	out := buf.String()
	assert.NotContains(t, out, "chatter")
	assert.Contains(t, out, "level=INFO msg=noteworthy lib=x")
	assert.Contains(t, out, "level=WARN msg=failure lib=x")
	assert.Equal(t, 2, strings.Count(out, "\n"))

	buf.Reset()
	debug := slog.New(Demote(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}), 4))
	debug.Info("chatter")
	assert.Contains(t, buf.String(), "level=DEBUG msg=chatter")
}
