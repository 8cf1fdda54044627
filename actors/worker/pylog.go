package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
)

// pyRecord is one record of a worker's Python logging, as the bridge
// writes it under the host (SNAKEPIT_LOG_FORMAT=json): one JSON object per
// line, marked with "snakepit_log".
type pyRecord struct {
	Marker        int    `json:"snakepit_log"`
	Level         string `json:"level"`
	Logger        string `json:"logger"`
	Msg           string `json:"msg"`
	PID           int    `json:"pid"`
	CorrelationID string `json:"correlation_id"`
	Exc           string `json:"exc"`
}

var recordPrefix = []byte(`{"snakepit_log":`)

// parsePyLine returns the record a line holds; ok is false for any other
// output (a print, a traceback Python wrote itself).
func parsePyLine(line []byte) (r pyRecord, ok bool) {
	if !bytes.HasPrefix(line, recordPrefix) {
		return r, false
	}
	if err := json.Unmarshal(line, &r); err != nil || r.Marker != 1 {
		return pyRecord{}, false
	}
	return r, true
}

// level is the record's slog level.
func (r pyRecord) level() slog.Level {
	switch r.Level {
	case "debug":
		return slog.LevelDebug
	case "warning", "warn":
		return slog.LevelWarn
	case "error", "critical":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// text is the record as a line of plain output (kept in the worker's
// output tail, which a crash report shows).
func (r pyRecord) text() string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(r.Level))
	b.WriteByte(' ')
	b.WriteString(r.Logger)
	b.WriteString(": ")
	b.WriteString(r.Msg)
	if r.Exc != "" {
		b.WriteByte('\n')
		b.WriteString(r.Exc)
	}
	b.WriteByte('\n')
	return b.String()
}

// attrs are the record's attributes in the host's log.
func (r pyRecord) attrs() []any {
	a := []any{"source", "python", "logger", r.Logger, "python_pid", r.PID}
	if r.CorrelationID != "" {
		a = append(a, "correlation_id", r.CorrelationID)
	}
	if r.Exc != "" {
		a = append(a, "exc", r.Exc)
	}
	return a
}

// pyLineLogger is where a Python process's output goes: its log records
// to log at their own levels, anything else (prints) at info.
func pyLineLogger(log *slog.Logger) func(line string, rec *pyRecord) {
	return func(line string, rec *pyRecord) {
		if rec != nil {
			log.Log(context.Background(), rec.level(), rec.Msg, rec.attrs()...)
			return
		}
		log.Info(line, "source", "python output")
	}
}
