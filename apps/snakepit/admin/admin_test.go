package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func TestEventLogKeepsTheLastEventsNewestFirst(t *testing.T) {
	var l eventLog
	l.note("not an event of ours")
	assert.Empty(t, l.recent())
	for i := range eventsKept + 5 {
		l.note(&snakepit.WorkerRecycled{Pool: "p", WorkerID: fmt.Sprintf("p-w%d", i), Reason: snakepit.RecycleTTL,
			Requests: i, Uptime: 90 * time.Second})
	}
	l.note(&snakepit.WorkerCrashed{Pool: "p", WorkerID: "p-w1", Generation: 3, Class: snakepit.ExitKilled,
		Exit: snakepit.WorkerExit{OSPid: 42, ExitCode: -1, Signal: "killed"}})
	l.note(&snakepit.CircuitChanged{Pool: "p", From: snakepit.CircuitClosed, To: snakepit.CircuitOpen})
	got := l.recent()
	assert.Len(t, got, eventsKept)
	assert.Equal(t, "circuit", got[0].Kind)
	assert.Equal(t, "closed → open", got[0].Detail)
	assert.Equal(t, "crashed", got[1].Kind)
	assert.Equal(t, "pid 42 signal killed, generation 3", got[1].Detail, "the class is not repeated when it is the signal")
	assert.Equal(t, "recycled", got[2].Kind)
	assert.Equal(t, "ttl after 54 requests, 1m30s", got[2].Detail)
	assert.Equal(t, "p-w7", got[len(got)-1].WorkerID, "the oldest kept")
}

func TestExitText(t *testing.T) {
	assert.Equal(t, "pid 7 exit code 1 (exit)", exitText(snakepit.WorkerExit{OSPid: 7, ExitCode: 1}, "exit"))
	assert.Equal(t, "pid 7 signal segmentation fault (segfault) for execution TTL",
		exitText(snakepit.WorkerExit{OSPid: 7, ExitCode: -1, Signal: "segmentation fault", KilledFor: "execution TTL"}, "segfault"))
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:0": true, "[::1]:80": true, "localhost:9": true,
		"0.0.0.0:0": false, "10.0.0.1:80": false, "nonsense": false} {
		assert.Equal(t, want, loopback(addr), addr)
	}
}
