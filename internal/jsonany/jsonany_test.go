package jsonany

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestKindOf(t *testing.T) {
	cases := []struct {
		raw, kind string
	}{
		{"null", KindNull}, {"true", KindBoolean}, {"false", KindBoolean},
		{"0", KindInteger}, {"-12", KindInteger}, {"1.5", KindFloat}, {"1e3", KindFloat},
		{"-2E-1", KindFloat}, {`"NaN"`, KindString}, {"[1]", KindList}, {`{"a":1}`, KindMap},
		{"  7 ", KindInteger},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			k, err := KindOf([]byte(c.raw))
			require.NoError(t, err)
			assert.Equal(t, c.kind, k)
		})
	}
	for _, bad := range []string{"", "  ", "x", "+1"} {
		_, err := KindOf([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestPackArgs(t *testing.T) {
	got, err := PackArgs([]byte(`{"a": 1, "b": "x", "c": [1, 2.5], "d": {"k": null}, "e": 2.5, "f": true, "g": null}`))
	require.NoError(t, err)
	want := map[string][2]string{
		"a": {KindInteger, "1"}, "b": {KindString, `"x"`}, "c": {KindList, "[1, 2.5]"},
		"d": {KindMap, `{"k": null}`}, "e": {KindFloat, "2.5"}, "f": {KindBoolean, "true"}, "g": {KindNull, "null"},
	}
	require.Len(t, got, len(want))
	for name, w := range want {
		assert.Equal(t, TypeURLPrefix+w[0], got[name].GetTypeUrl(), name)
		assert.Equal(t, w[1], string(got[name].GetValue()), name)
	}

	for _, empty := range []string{"", "null", "{}"} {
		m, err := PackArgs([]byte(empty))
		require.NoError(t, err)
		assert.Empty(t, m)
	}
	for _, bad := range []string{"[1]", `"s"`, "{", `{"a":}`} {
		_, err := PackArgs([]byte(bad))
		assert.Error(t, err, bad)
	}
	_, err = PackArgs([]byte("[1]"))
	assert.ErrorIs(t, err, ErrNotObject)
}

func TestUnpack(t *testing.T) {
	cases := []struct {
		name string
		in   *anypb.Any
		want string
		err  bool
	}{
		{"nil", nil, "null", false},
		{"ours", &anypb.Any{TypeUrl: TypeURLPrefix + KindMap, Value: []byte(`{"a":1}`)}, `{"a":1}`, false},
		{"empty value", &anypb.Any{TypeUrl: TypeURLPrefix + KindNull}, "null", false},
		{"upstream StringValue with JSON", &anypb.Any{TypeUrl: stringValueURL, Value: []byte(`"hi"`)}, `"hi"`, false},
		{"invalid JSON", &anypb.Any{TypeUrl: TypeURLPrefix + KindMap, Value: []byte(`{`)}, "", true},
		{"binary", &anypb.Any{TypeUrl: TypeURLPrefix + KindBinary, Value: []byte{0, 1}}, "", true},
		{"foreign type holding JSON", &anypb.Any{TypeUrl: "type.googleapis.com/x.Y", Value: []byte(`1`)}, "1", false},
		{"foreign type not JSON", &anypb.Any{TypeUrl: "type.googleapis.com/x.Y", Value: []byte{0x0a, 0x01}}, "", true},
		{"packed StringValue", packed(t, wrapperspb.String("héllo")), `"héllo"`, false},
		{"packed BoolValue", packed(t, wrapperspb.Bool(true)), `true`, false},
		{"packed Value", packed(t, structpb.NewNumberValue(2.5)), `2.5`, false},
		{"packed Struct", packed(t, mustStruct(t, map[string]any{"a": "b"})), `{"a":"b"}`, false},
		{"packed Int64Value is not accepted", packed(t, wrapperspb.Int64(3)), "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Unpack(c.in)
			if c.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.JSONEq(t, c.want, string(got))
		})
	}
	assert.True(t, IsBinary(&anypb.Any{TypeUrl: TypeURLPrefix + KindBinary}))
	assert.False(t, IsBinary(&anypb.Any{TypeUrl: TypeURLPrefix + KindString}))
}

func FuzzPackArgsKinds(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[true,null]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := PackArgs(in)
		if err != nil {
			return
		}
		for _, a := range m {
			raw, err := Unpack(a)
			require.NoError(t, err)
			k, err := KindOf(raw)
			require.NoError(t, err)
			assert.Equal(t, TypeURLPrefix+k, a.GetTypeUrl())
		}
	})
}

// packed is a real packed message.
func packed(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	require.NoError(t, err)
	return a
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return s
}
