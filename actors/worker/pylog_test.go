package worker

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParsePyLine(t *testing.T) {
	r, ok := parsePyLine([]byte(`{"snakepit_log": 1, "level": "warning", "logger": "m", "msg": "hi", "pid": 7, "correlation_id": "c"}` + "\n"))
	assert.True(t, ok)
	assert.Equal(t, pyRecord{Marker: 1, Level: "warning", Logger: "m", Msg: "hi", PID: 7, CorrelationID: "c"}, r)
	assert.Equal(t, slog.LevelWarn, r.level())
	assert.Equal(t, "WARNING m: hi\n", r.text())
	assert.Equal(t, []any{"source", "python", "logger", "m", "python_pid", 7, "correlation_id", "c"}, r.attrs())

	for _, line := range []string{
		"plain output\n",
		`{"other": 1}`,
		`{"snakepit_log": 2, "msg": "a future format"}`,
		`{"snakepit_log": 1, "msg": broken`,
	} {
		_, ok := parsePyLine([]byte(line))
		assert.False(t, ok, line)
	}
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warning": slog.LevelWarn,
		"error": slog.LevelError, "critical": slog.LevelError, "odd": slog.LevelInfo} {
		assert.Equal(t, want, pyRecord{Level: level}.level(), level)
	}
	r = pyRecord{Level: "error", Logger: "x", Msg: "failed", Exc: "Traceback ..."}
	assert.Equal(t, "ERROR x: failed\nTraceback ...\n", r.text())
}
