package jsonany

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

// FuzzPackArgs: arguments that pack come back out of Unpack as the same
// JSON values; anything else is an error, never a panic.
func FuzzPackArgs(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[1,2,{"c":null}],"s":"é"}`, `{"x":1e400}`, `[1]`, `{"a":}`, `null`, ``, `{"a":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		params, err := PackArgs(raw)
		if err != nil {
			return
		}
		var want map[string]json.RawMessage
		if tr := TrimSpace(raw); len(tr) > 0 && !bytes.Equal(tr, []byte("null")) {
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("PackArgs accepted %q, which is not a JSON object: %v", raw, err)
			}
		}
		if len(params) != len(want) {
			t.Fatalf("%d parameters from %d members", len(params), len(want))
		}
		for name, a := range params {
			got, err := Unpack(a)
			if err != nil {
				t.Fatalf("parameter %q does not unpack: %v", name, err)
			}
			if !jsonEqual(got, want[name]) {
				t.Fatalf("parameter %q: %s, want %s", name, got, want[name])
			}
		}
	})
}

// FuzzUnpack: whatever a peer puts in an Any, Unpack returns valid JSON or
// an error.
func FuzzUnpack(f *testing.F) {
	f.Add("type.googleapis.com/snakepit.map", []byte(`{"a":1}`))
	f.Add("type.googleapis.com/google.protobuf.StringValue", []byte("\n\x03abc"))
	f.Add("type.googleapis.com/snakepit.binary", []byte{0, 1})
	f.Add("", []byte("not json"))
	f.Fuzz(func(t *testing.T, url string, v []byte) {
		out, err := Unpack(&anypb.Any{TypeUrl: url, Value: v})
		if err == nil && !json.Valid(out) {
			t.Fatalf("Unpack(%q, %q) = %q: not JSON", url, v, out)
		}
		if err != nil && len(err.Error()) > 1<<10 { // 200 bytes of the type URL, quoted
			t.Fatalf("unbounded error: %d bytes", len(err.Error()))
		}
	})
}

// jsonEqual compares two JSON texts byte for byte once compacted (no
// number is reinterpreted: 1e400 stays 1e400).
func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}
