package snakepit

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/worker"
)

// fill sets every field of the struct v points to a distinct non-zero value
// (recursing into nested structs), so a field dropped on the way shows up.
func fill(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		*seed++
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("v%d", *seed))
		case reflect.Int, reflect.Int64:
			if f.Type() == reflect.TypeOf(time.Duration(0)) {
				f.SetInt(int64(*seed) * int64(time.Millisecond))
			} else {
				f.SetInt(int64(*seed))
			}
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Float64:
			f.SetFloat(float64(*seed) / 1000)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 1, 1)
			if s.Index(0).Kind() == reflect.String {
				s.Index(0).SetString(fmt.Sprintf("s%d", *seed))
			}
			f.Set(s)
		case reflect.Struct:
			fill(t, f, seed)
		case reflect.Ptr:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("field %s: kind %s: teach fill about it", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// TestEveryPoolFieldReachesTheWorkersAndReplacements fails when a field is
// added to PoolConfig but not carried into the worker template (which
// every start and replacement of a worker is made from), the recycling
// limits or the pool's own config.
func TestEveryPoolFieldReachesTheWorkersAndReplacements(t *testing.T) {
	var p PoolConfig
	seed := 0
	fill(t, reflect.ValueOf(&p).Elem(), &seed)
	c := Config{InstanceName: "inst", Python: "/py", Script: "/s/grpc_server.py", ThreadedScript: "/s/t.py", PythonPath: []string{"/pp"}}
	pc := reflect.ValueOf(c.poolConfig(p, "run"))
	wc := reflect.ValueOf(c.workerConfig(p, "run"))
	lim := reflect.ValueOf(limits(p))
	renamed := map[string]string{"Name": "PoolName", "CrashBarrier": "Crash"}
	pv := reflect.ValueOf(p)
	for i := 0; i < pv.NumField(); i++ {
		name := pv.Type().Field(i).Name
		if name == "TimeoutProfile" {
			continue // resolved into QueueTimeout, ExecuteTimeout and StreamTimeout by Start (TestApplyProfileFillsOnlyUnsetTimeouts)
		}
		if name == "SharedMemoryThreshold" {
			continue // a *shm.Dir made per pool by Start (tests/shm_e2e_test.go)
		}
		if name == "ForkServer" {
			continue // a *worker.ForkServer made per pool by Start (tests/forkserver_e2e_test.go)
		}
		if name == "Telemetry" {
			w := c.workerConfig(p, "run").Telemetry
			require.Equal(t, PythonTelemetry{Enabled: w.Enabled, Allow: w.Allow, Deny: w.Deny, SamplingRate: w.SamplingRate,
				SamplingPatterns: w.SamplingPatterns}, p.Telemetry, "PoolConfig.Telemetry reaches the worker template")
			continue
		}
		// Compared as printed: the public types are the package's own, the
		// actors' are theirs, with the same values and fields.
		want := fmt.Sprintf("%+v", pv.Field(i).Interface())
		target := name
		if r, ok := renamed[name]; ok {
			target = r
		}
		var got []string
		for _, dst := range []reflect.Value{pc, wc, lim} {
			for _, n := range []string{name, target} {
				if f := dst.FieldByName(n); f.IsValid() {
					got = append(got, fmt.Sprintf("%+v", f.Interface()))
				}
			}
		}
		require.Containsf(t, got, want, "PoolConfig.%s is not carried into the pool config, the worker template or the limits", name)
	}

	// And the pool's worker template keeps what
	// defines a worker (every replacement starts from that template).
	w := c.poolConfig(p, "run").Worker
	require.Equal(t, p.Adapter, w.Adapter)
	require.Equal(t, p.AdapterArgs, w.AdapterArgs)
	require.Equal(t, p.AdapterEnv, w.AdapterEnv)
	require.Equal(t, worker.Profile(p.Profile), w.Profile)
	require.Equal(t, p.Threads, w.Threads)
	require.Equal(t, worker.Transport(p.Transport), w.Transport)
	require.Equal(t, p.ExecutionTTL, w.ExecutionTTL)
	require.Equal(t, p.CancelGrace, w.CancelGrace)
	require.Equal(t, p.AllowPickle, w.AllowPickle)
	require.Equal(t, p.Heartbeat.internal(), w.Heartbeat)
	require.Equal(t, p.ReadyTimeout, w.ReadyTimeout)
	require.Equal(t, p.StopGrace, w.StopGrace)
	require.Equal(t, "inst/"+p.Name, w.PoolIdentifier)
	require.Equal(t, c.PythonPath, w.PythonPath)
}
