package snakepit

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Every field of the pool's Stats message reaches PoolStats, and every
// PoolStats field comes from one: a field added to either fails here.
func TestPoolStatsCarriesEveryField(t *testing.T) {
	msg := &poolpb.Stats{}
	fields := msg.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch f.Kind() {
		case protoreflect.StringKind:
			msg.ProtoReflect().Set(f, protoreflect.ValueOfString("v"+string(f.Name())))
		case protoreflect.Uint64Kind:
			msg.ProtoReflect().Set(f, protoreflect.ValueOfUint64(uint64(i+1)))
		default:
			t.Fatalf("Stats.%s: a kind this test does not fill (%s)", f.Name(), f.Kind())
		}
	}
	got := reflect.ValueOf(poolStatsFrom(msg))
	require.Equal(t, fields.Len(), got.NumField(), "PoolStats has one field per Stats field")
	for i := range got.NumField() {
		require.False(t, got.Field(i).IsZero(), "PoolStats.%s is never set", got.Type().Field(i).Name)
	}
}

func TestSessionStatsCarriesEveryField(t *testing.T) {
	in := sessions.Stats{Active: 1, Created: 2, Expired: 3, Deleted: 4, RejectedQuota: 5, MaxSessions: 6}
	require.Equal(t, reflect.TypeOf(in).NumField(), reflect.TypeOf(SessionStats{}).NumField())
	got := reflect.ValueOf(sessionStatsFrom(in))
	for i := range got.NumField() {
		require.False(t, got.Field(i).IsZero(), "SessionStats.%s is never set", got.Type().Field(i).Name)
	}
}
