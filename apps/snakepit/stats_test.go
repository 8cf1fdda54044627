package snakepit

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/actors/registry/cleanup"
	"github.com/snakepit-go/snakepit/internal/procs"
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
	// SharedMemory is this node's, added by App.Stats (tests/shm_e2e_test.go).
	require.Equal(t, fields.Len()+1, got.NumField(), "PoolStats has one field per Stats field, and SharedMemory")
	for i := range got.NumField() {
		if got.Type().Field(i).Name == "SharedMemory" {
			continue
		}
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

// A cleanup report keeps every field, and outcomes read as their names.
func TestCleanupReportCarriesEveryField(t *testing.T) {
	in := cleanup.Report{Forgotten: 2, Kept: 1, Took: time.Second, DryRun: true, Killed: []cleanup.Killed{
		{PID: 10, PGID: 10, RunID: "r", WorkerID: "w", Reason: "old run", Outcome: procs.Survived, Err: errors.New("EPERM")},
	}}
	got := cleanupReportFrom(in)
	require.Equal(t, reflect.TypeOf(in).NumField(), reflect.TypeOf(got).NumField())
	require.Equal(t, reflect.TypeOf(in.Killed[0]).NumField(), reflect.TypeOf(got.Killed[0]).NumField())
	k := reflect.ValueOf(got.Killed[0])
	for i := range k.NumField() {
		require.False(t, k.Field(i).IsZero(), "CleanedProcess.%s is never set", k.Type().Field(i).Name)
	}
	require.Equal(t, KillSurvived, got.Killed[0].Outcome)
	require.Len(t, got.Survivors(), 1)
	require.Equal(t, in.String(), got.String())
	for o, want := range map[procs.Outcome]KillOutcome{procs.Gone: KillGone, procs.Terminated: KillTerminated, procs.Killed: KillKilled, procs.Survived: KillSurvived} {
		require.Equal(t, want, KillOutcome(o.String()))
	}
}
