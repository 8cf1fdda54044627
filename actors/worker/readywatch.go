package worker

import (
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// readyWatch lets booting workers wait for their ready file instead of
// polling it: one fsnotify watcher (inotify on Linux) shared by every
// worker booting in this process, each watching its own private
// directory. The watcher exists while some worker boots and is closed with
// its goroutine when the last one is done. When the system refuses a
// watcher (a limit on inotify instances or watches), watch reports it and
// the worker polls.
type readyWatch struct {
	mu      sync.Mutex
	w       *fsnotify.Watcher
	done    chan struct{} // closed when the dispatch goroutine has ended
	waiters map[string]chan struct{}
}

var readyWatcher readyWatch

// watch signals ch (buffered, coalesced) on every change in dir until stop
// is called; ok is false when no watcher can be had.
func (r *readyWatch) watch(dir string) (ch <-chan struct{}, stop func(), ok bool) {
	dir = filepath.Clean(dir)
	r.mu.Lock()
	if r.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			r.mu.Unlock()
			return nil, func() {}, false
		}
		r.w, r.done, r.waiters = w, make(chan struct{}), map[string]chan struct{}{}
		go r.dispatch(w, r.done)
	}
	if err := r.w.Add(dir); err != nil {
		w, done := r.detachIfIdle()
		r.mu.Unlock()
		closeWatcher(w, done)
		return nil, func() {}, false
	}
	c := make(chan struct{}, 1)
	r.waiters[dir] = c
	r.mu.Unlock()
	var once sync.Once
	return c, func() { once.Do(func() { r.unwatch(dir) }) }, true
}

func (r *readyWatch) unwatch(dir string) {
	r.mu.Lock()
	delete(r.waiters, dir)
	if r.w != nil {
		_ = r.w.Remove(dir) // fails when dir is already gone: nothing to do
	}
	w, done := r.detachIfIdle()
	r.mu.Unlock()
	closeWatcher(w, done)
}

// detachIfIdle takes the watcher away when nobody waits (r.mu held); the
// caller closes it after unlocking (its goroutine may be waiting for r.mu).
func (r *readyWatch) detachIfIdle() (*fsnotify.Watcher, chan struct{}) {
	if r.w == nil || len(r.waiters) > 0 {
		return nil, nil
	}
	w, done := r.w, r.done
	r.w, r.done, r.waiters = nil, nil, nil
	return w, done
}

// closeWatcher closes w and waits for its goroutine, so nothing outlives
// the last boot.
func closeWatcher(w *fsnotify.Watcher, done chan struct{}) {
	if w == nil {
		return
	}
	_ = w.Close()
	<-done
}

// dispatch wakes the waiter of the directory each event is in.
func (r *readyWatch) dispatch(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			dir := filepath.Dir(ev.Name)
			r.mu.Lock()
			c := r.waiters[dir]
			r.mu.Unlock()
			if c != nil {
				select {
				case c <- struct{}{}:
				default: // a wake-up is pending already
				}
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: wake everyone to look again.
			r.mu.Lock()
			for _, c := range r.waiters {
				select {
				case c <- struct{}{}:
				default:
				}
			}
			r.mu.Unlock()
		}
	}
}
