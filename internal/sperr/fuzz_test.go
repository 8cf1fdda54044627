package sperr

import (
	"strings"
	"testing"
)

// FuzzFromPython: any payload a worker (or something posing as one) sends
// becomes an Error with a known code and bounded fields, never a panic.
func FuzzFromPython(f *testing.F) {
	for _, s := range []string{
		`{"type":"ValueError","message":"boom","traceback":"Traceback...","context":{"tool_name":"t"}}`,
		`{"type":"ToolNotFoundError","message":"no"}`,
		`{"type":"","message":"x"}`,
		`not json`, `{"type":1}`, `{"context":[]}`, ``,
	} {
		f.Add(s)
	}
	f.Add(`{"type":"X","message":"` + strings.Repeat("m", 40<<10) + `"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		e := FromPython(raw)
		if e == nil || e.Code == "" {
			t.Fatalf("no error for %q", raw)
		}
		if CategoryOf(e.Code) == "" {
			t.Fatalf("code %q has no category", e.Code)
		}
		if len(e.Message) > MessageLimit+64 || len(e.PythonTraceback) > TracebackLimit+64 || len(e.PythonType) > EchoLimit+64 {
			t.Fatalf("unbounded fields: message %d, traceback %d, type %d", len(e.Message), len(e.PythonTraceback), len(e.PythonType))
		}
		_ = e.Error()
	})
}
