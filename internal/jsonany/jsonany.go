// Package jsonany is the Go half of the bridge's value convention
// (README_GRPC.md, "Values"): a google.protobuf.Any whose value is raw JSON
// bytes and whose type_url names the JSON kind,
// type.googleapis.com/snakepit.<null|boolean|integer|float|string|list|map>.
// The Python half is priv/python/snakepit_bridge/serialization.py.
//
// The host keeps values as JSON end to end: a call's arguments arrive as one
// JSON object and each member is sent untouched; a result's JSON is handed
// back untouched. Nothing is decoded into Go values on the hot path.
package jsonany

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/anypb"
)

// TypeURLPrefix prefixes every kind's type_url.
const TypeURLPrefix = "type.googleapis.com/snakepit."

// Kinds of JSON value.
const (
	KindNull    = "null"
	KindBoolean = "boolean"
	KindInteger = "integer"
	KindFloat   = "float"
	KindString  = "string"
	KindList    = "list"
	KindMap     = "map"
	KindBinary  = "binary"
)

// stringValueURL is what upstream's Elixir host sends (JSON bytes under the
// StringValue type_url); accepted when decoding.
const stringValueURL = "type.googleapis.com/google.protobuf.StringValue"

// ErrNotObject is returned when call arguments are not a JSON object.
var ErrNotObject = errors.New("arguments must be a JSON object")

// KindOf returns the kind of one JSON value (already valid JSON).
func KindOf(raw []byte) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("empty JSON value")
	}
	switch c := raw[0]; {
	case c == 'n':
		return KindNull, nil
	case c == 't' || c == 'f':
		return KindBoolean, nil
	case c == '"':
		return KindString, nil
	case c == '[':
		return KindList, nil
	case c == '{':
		return KindMap, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if bytes.ContainsAny(raw, ".eE") {
			return KindFloat, nil
		}
		return KindInteger, nil
	default:
		return "", fmt.Errorf("not a JSON value: %.20q", raw)
	}
}

// Pack wraps one JSON value in an Any of its kind. The bytes are not copied.
func Pack(raw []byte) (*anypb.Any, error) {
	kind, err := KindOf(raw)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: TypeURLPrefix + kind, Value: bytes.TrimSpace(raw)}, nil
}

// PackArgs turns a JSON object into the parameters map of an
// ExecuteToolRequest. Empty input is an empty map.
func PackArgs(argsJSON []byte) (map[string]*anypb.Any, error) {
	argsJSON = bytes.TrimSpace(argsJSON)
	if len(argsJSON) == 0 || bytes.Equal(argsJSON, []byte("null")) {
		return map[string]*anypb.Any{}, nil
	}
	if argsJSON[0] != '{' {
		return nil, ErrNotObject
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(argsJSON, &members); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	out := make(map[string]*anypb.Any, len(members))
	for name, raw := range members {
		a, err := Pack(raw)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", name, err)
		}
		out[name] = a
	}
	return out, nil
}

// Unpack returns the JSON bytes an Any carries. Our kinds and upstream's
// StringValue-with-JSON are returned as they are; a binary kind is not JSON
// and is an error here (callers check IsBinary first).
func Unpack(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	url := a.GetTypeUrl()
	switch {
	case url == TypeURLPrefix+KindBinary:
		return nil, errors.New("binary value is not JSON")
	case strings.HasPrefix(url, TypeURLPrefix), url == stringValueURL, url == "":
		if len(bytes.TrimSpace(a.GetValue())) == 0 {
			return []byte("null"), nil
		}
		if !json.Valid(a.GetValue()) {
			return nil, fmt.Errorf("value of kind %q is not valid JSON", strings.TrimPrefix(url, TypeURLPrefix))
		}
		return a.GetValue(), nil
	default:
		return nil, fmt.Errorf("unsupported value type %q", url)
	}
}

// IsBinary reports whether a carries raw bytes rather than JSON.
func IsBinary(a *anypb.Any) bool {
	return a.GetTypeUrl() == TypeURLPrefix+KindBinary
}
