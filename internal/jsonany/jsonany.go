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

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/snakepit-go/snakepit/internal/sperr"
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

// packedWrappers are the well-known types upstream's Python client packs
// (importing their packages registers them for UnmarshalNew).
var packedWrappers = map[string]bool{
	stringValueURL: true,
	"type.googleapis.com/" + string((&wrapperspb.BoolValue{}).ProtoReflect().Descriptor().FullName()): true,
	"type.googleapis.com/" + string((&structpb.Value{}).ProtoReflect().Descriptor().FullName()):       true,
	"type.googleapis.com/" + string((&structpb.Struct{}).ProtoReflect().Descriptor().FullName()):      true,
}

// ErrNotObject is returned when call arguments are not a JSON object.
var ErrNotObject = errors.New("arguments must be a JSON object")

// KindOf returns the kind of one JSON value (already valid JSON).
func KindOf(raw []byte) (string, error) {
	raw = TrimSpace(raw)
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
	return &anypb.Any{TypeUrl: typeURLs[kind], Value: TrimSpace(raw)}, nil
}

// typeURLs holds each kind's type_url, built once rather than per value.
var typeURLs = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{KindNull, KindBoolean, KindInteger, KindFloat, KindString, KindList, KindMap} {
		m[k] = TypeURLPrefix + k
	}
	return m
}()

// PackArgs turns a JSON object into the parameters map of an
// ExecuteToolRequest. Empty input is an empty map.
func PackArgs(argsJSON []byte) (map[string]*anypb.Any, error) {
	argsJSON = TrimSpace(argsJSON)
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
			return nil, fmt.Errorf("argument %q: %w", sperr.Truncate(name, sperr.EchoLimit), err)
		}
		out[name] = a
	}
	return out, nil
}

// Unpack returns the JSON bytes an Any carries, whatever its type_url says
// (our kinds, upstream's StringValue-with-JSON, anything else holding JSON).
// A value that is not JSON is accepted only as a real packed
// StringValue, BoolValue, Value or Struct (what upstream's Python client
// sends), returned in its JSON form. A binary kind is not JSON and is an
// error here (callers check IsBinary first).
func Unpack(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	url, v := a.GetTypeUrl(), a.GetValue()
	switch {
	case url == TypeURLPrefix+KindBinary:
		return nil, errors.New("binary value is not JSON")
	case len(TrimSpace(v)) == 0:
		return []byte("null"), nil
	case json.Valid(v):
		return v, nil
	case packedWrappers[url]:
		if m, err := a.UnmarshalNew(); err == nil {
			return protojson.Marshal(m)
		}
	}
	return nil, fmt.Errorf("value of type %q is neither JSON nor a packed StringValue/BoolValue/Value/Struct", sperr.Truncate(url, sperr.EchoLimit))
}

// IsBinary reports whether a carries raw bytes rather than JSON.
func IsBinary(a *anypb.Any) bool {
	return a.GetTypeUrl() == TypeURLPrefix+KindBinary
}

// TrimSpace trims JSON's whitespace (space, tab, CR, LF) and nothing
// else: "{}\f" is not JSON, so it must not become "{}".
func TrimSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }
