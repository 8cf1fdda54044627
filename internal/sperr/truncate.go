package sperr

import (
	"fmt"
	"unicode/utf8"
)

// EchoLimit is how much of a caller's input (a tool name, a value) an error
// message repeats.
const EchoLimit = 200

// MessageLimit and TracebackLimit bound a translated error's message and
// traceback (a worker's payload, or whatever else a peer sends).
const (
	MessageLimit   = 16 << 10
	TracebackLimit = 32 << 10
)

// Truncate returns s cut to at most n bytes (on a rune boundary), saying how
// much was cut, so that an error never echoes unbounded input.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(+%d bytes)", s[:cut], len(s)-cut)
}
