package snakepit

import (
	"errors"
	"sync"
	"time"
)

// CallError is one failed call, as App.RecentErrors keeps it.
type CallError struct {
	At       time.Time `json:"at"`
	Pool     string    `json:"pool"`
	Tool     string    `json:"tool"`
	Category string    `json:"category"`
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	WorkerID string    `json:"worker_id,omitempty"`
}

// recentErrorsKept is how many failed calls App.RecentErrors remembers.
const recentErrorsKept = 32

// errorRing keeps the last failed calls; it is only written on a call's
// error path.
type errorRing struct {
	mu   sync.Mutex
	buf  [recentErrorsKept]CallError
	next int
	n    int
}

func (r *errorRing) add(pool, tool string, err error) {
	ce := CallError{At: time.Now(), Pool: pool, Tool: tool, Message: err.Error()}
	var e *Error
	if errors.As(public(err), &e) {
		ce.Category, ce.Code, ce.Message, ce.WorkerID = string(e.Category), e.Code, e.Message, e.WorkerID
		if e.PythonType != "" {
			ce.Message = e.PythonType + ": " + e.Message
		}
	}
	r.mu.Lock()
	r.buf[r.next] = ce
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// all returns the kept errors, newest first.
func (r *errorRing) all() []CallError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CallError, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// RecentErrors returns the last calls made through this App (Execute,
// ExecuteStream, sessions) that failed, newest first: at most 32.
func (a *App) RecentErrors() []CallError { return a.recent.all() }
