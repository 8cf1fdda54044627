// Package admin is a running host's local admin endpoint: an HTTP server
// on a loopback address that answers GET /api/status with the host's pools
// and workers (Status), for `snakepit status` and for scripts, and runs
// one call through the host's pools on POST /api/execute (`snakepit exec
// -host`). It also serves the Prometheus /metrics endpoint (ServeMetrics).
//
// Every request must carry the endpoint's token (Authorization: Bearer
// TOKEN). The token is random per start and is written, with the address,
// to the file admin.json in the instance directory (mode 0600, in a 0700
// directory), so only the user who runs the host can read it; the file is
// removed when the server closes. Nothing is on a command line.
package admin

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/eventstream"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/auth"
)

// EndpointFile is the file in the instance directory that tells tools of
// the same user where the admin endpoint is and its token.
const EndpointFile = "admin.json"

// Status is a running host's snapshot.
type Status struct {
	Instance      string                `json:"instance"`
	RunID         string                `json:"run_id"`
	Version       string                `json:"version"`
	PID           int                   `json:"pid"`
	StartedAt     time.Time             `json:"started_at"`
	UptimeSeconds float64               `json:"uptime_seconds"`
	TakenAt       time.Time             `json:"taken_at"`
	Pools         []PoolStatus          `json:"pools"`
	Sessions      snakepit.SessionStats `json:"sessions"`
	// RecentErrors are the last failed calls made through the App.
	RecentErrors []snakepit.CallError `json:"recent_errors"`
	// RecentEvents are the last worker crashes, recycles and circuit
	// changes the admin endpoint saw (newest first).
	RecentEvents []Event `json:"recent_events"`
}

// Event is one worker or pool event the admin endpoint keeps.
type Event struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // crashed, recycled, circuit
	Pool     string    `json:"pool"`
	WorkerID string    `json:"worker_id,omitempty"`
	Detail   string    `json:"detail"`
}

// eventsKept is how many events the endpoint remembers.
const eventsKept = 50

// eventLog keeps the last events, fed by the App's event stream.
type eventLog struct {
	mu     sync.Mutex
	events []Event // oldest first
}

func (l *eventLog) note(evt any) {
	var e Event
	switch m := evt.(type) {
	case *snakepit.WorkerCrashed:
		e = Event{Kind: "crashed", Pool: m.Pool, WorkerID: m.WorkerID,
			Detail: fmt.Sprintf("%s, generation %d", exitText(m.Exit, string(m.Class)), m.Generation)}
	case *snakepit.WorkerRecycled:
		d := fmt.Sprintf("%s after %d requests, %s", m.Reason, m.Requests, m.Uptime.Round(time.Second))
		if m.Removed {
			d += ", removed"
		}
		e = Event{Kind: "recycled", Pool: m.Pool, WorkerID: m.WorkerID, Detail: d}
	case *snakepit.CircuitChanged:
		e = Event{Kind: "circuit", Pool: m.Pool, Detail: fmt.Sprintf("%s → %s", m.From, m.To)}
	default:
		return
	}
	e.At = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if len(l.events) > eventsKept {
		l.events = slices.Delete(l.events, 0, len(l.events)-eventsKept)
	}
}

// exitText says how a worker's process ended: "pid 12 signal killed",
// "pid 12 exit code 1 (exit)".
func exitText(e snakepit.WorkerExit, class string) string {
	s := fmt.Sprintf("pid %d exit code %d", e.OSPid, e.ExitCode)
	how := fmt.Sprint(e.ExitCode)
	if e.Signal != "" {
		s, how = fmt.Sprintf("pid %d signal %s", e.OSPid, e.Signal), e.Signal
	}
	if class != "" && class != how {
		s += " (" + class + ")"
	}
	if e.KilledFor != "" {
		s += " for " + e.KilledFor
	}
	return s
}

// recent returns the events, newest first.
func (l *eventLog) recent() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.events)
	slices.Reverse(out)
	return out
}

// PoolStatus is one pool: its figures and its workers.
type PoolStatus struct {
	snakepit.PoolStats
	WorkerList []snakepit.WorkerInfo `json:"worker_list"`
}

// Snapshot takes app's status now.
func Snapshot(ctx context.Context, app *snakepit.App) (*Status, error) {
	now := time.Now()
	st := &Status{Instance: app.Instance(), RunID: app.RunID(), Version: snakepit.Version, PID: os.Getpid(),
		StartedAt: app.StartedAt(), UptimeSeconds: now.Sub(app.StartedAt()).Seconds(), TakenAt: now}
	for _, name := range app.Pools() {
		ps, err := app.Stats(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", name, err)
		}
		ws, err := app.Workers(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", name, err)
		}
		st.Pools = append(st.Pools, PoolStatus{PoolStats: ps, WorkerList: ws})
	}
	ss, err := app.SessionStats(ctx)
	if err != nil {
		return nil, err
	}
	st.Sessions = ss
	st.RecentErrors = app.RecentErrors()
	return st, nil
}

// Endpoint is where a host's admin endpoint is, as its EndpointFile says.
type Endpoint struct {
	Address string `json:"address"`
	Token   string `json:"token"`
	PID     int    `json:"pid"`
	RunID   string `json:"run_id"`
}

// ErrNoEndpoint reports an instance with no admin endpoint file: no host of
// it is running, or it runs without the admin endpoint.
var ErrNoEndpoint = errors.New("no running host with an admin endpoint")

// ReadEndpoint reads the EndpointFile of an instance directory.
func ReadEndpoint(instanceDir string) (Endpoint, error) {
	b, err := os.ReadFile(filepath.Join(instanceDir, EndpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Endpoint{}, fmt.Errorf("%w in %s", ErrNoEndpoint, instanceDir)
	}
	if err != nil {
		return Endpoint{}, err
	}
	var ep Endpoint
	if err := json.Unmarshal(b, &ep); err != nil || ep.Address == "" || ep.Token == "" {
		return Endpoint{}, fmt.Errorf("%s: not an admin endpoint file", filepath.Join(instanceDir, EndpointFile))
	}
	return ep, nil
}

// Fetch gets the status from the endpoint.
func Fetch(ctx context.Context, ep Endpoint) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.Address+"/api/status", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+ep.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s (host pid %d): %w", ep.Address, ep.PID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin endpoint %s: %s", ep.Address, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %w", ep.Address, err)
	}
	return &st, nil
}

// Options configure Serve.
type Options struct {
	// Address is host:port (default 127.0.0.1:0); a loopback address only.
	Address string
	Logger  *slog.Logger
}

// Server is a running admin endpoint.
type Server struct {
	*httpServer
	app    *snakepit.App
	file   string
	ep     Endpoint
	events eventLog
	sub    *eventstream.Subscription
}

// Serve starts the admin endpoint of app and writes its EndpointFile.
func Serve(app *snakepit.App, opts Options) (*Server, error) {
	addr := opts.Address
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if !loopback(addr) {
		return nil, fmt.Errorf("admin address %s is not a loopback address", addr)
	}
	s := &Server{app: app, file: filepath.Join(app.InstanceDir(), EndpointFile)}
	token := auth.NewSecret()
	// The page and the status it reads take the token from a cookie too
	// (set by /login, SameSite=Strict so no other site can use it); a call
	// (POST /api/execute) takes it only from the Authorization header.
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", bearerOrCookie(token, http.HandlerFunc(page)))
	mux.HandleFunc("GET /login", s.login)
	mux.Handle("GET /api/status", bearerOrCookie(token, http.HandlerFunc(s.status)))
	mux.Handle("POST /api/execute", bearer(token, http.HandlerFunc(s.execute)))
	var err error
	if s.httpServer, err = serveHTTP(addr, mux, opts.Logger, "admin endpoint"); err != nil {
		return nil, err
	}
	s.ep = Endpoint{Address: s.Address(), Token: token, PID: os.Getpid(), RunID: app.RunID()}
	if err := writeEndpoint(s.file, s.ep); err != nil {
		_ = s.httpServer.Close(context.Background())
		return nil, err
	}
	s.sub = app.System().EventStream.Subscribe(s.events.note)
	return s, nil
}

// Endpoint is what the EndpointFile says.
func (s *Server) Endpoint() Endpoint { return s.ep }

// PageURL is the address of the live status page with the token to log
// in once (it sets a cookie and redirects to the page). Keep it private:
// it carries the token.
func (s *Server) PageURL() string { return s.ep.PageURL() }

// PageURL is the status page's login address for a host found with
// ReadEndpoint.
func (ep Endpoint) PageURL() string { return "http://" + ep.Address + "/login?token=" + ep.Token }

// Close stops the server and removes its EndpointFile (unless another
// host of the instance has written its own since).
func (s *Server) Close(ctx context.Context) error {
	s.app.System().EventStream.Unsubscribe(s.sub)
	err := s.httpServer.Close(ctx)
	if ep, rerr := ReadEndpoint(filepath.Dir(s.file)); rerr == nil && ep.Token == s.ep.Token {
		_ = os.Remove(s.file)
	}
	return err
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := Snapshot(ctx, s.app)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	st.RecentEvents = s.events.recent()
	writeJSON(w, http.StatusOK, st)
}

//go:embed web/index.html
var pageHTML []byte

// cookieName holds the token in a browser.
const cookieName = "snakepit_admin"

func page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = w.Write(pageHTML)
}

// login takes the token once from the query, keeps it in a cookie only
// this origin sends, and redirects to the page (so the token leaves the
// address bar).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !auth.Equal(r.URL.Query().Get("token"), s.ep.Token) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.ep.Token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ExecuteRequest is the body of POST /api/execute: one call through the
// host's pools, as App.Execute makes it.
type ExecuteRequest struct {
	Pool          string          `json:"pool,omitempty"`
	Tool          string          `json:"tool"`
	Args          json.RawMessage `json:"args,omitempty"`
	TimeoutMS     int             `json:"timeout_ms,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
}

// ExecuteReply is the answer of POST /api/execute: the result's JSON (a
// binary result's size), or the structured error.
type ExecuteReply struct {
	Result      json.RawMessage `json:"result,omitempty"`
	BinaryBytes int             `json:"binary_bytes,omitempty"`
	WorkerID    string          `json:"worker_id,omitempty"`
	Error       *snakepit.Error `json:"error,omitempty"`
}

// maxExecuteBody bounds a request body (the args of one call).
const maxExecuteBody = 16 << 20

func (s *Server) execute(w http.ResponseWriter, r *http.Request) {
	var req ExecuteRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxExecuteBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Tool == "" {
		msg := "want a JSON object with at least \"tool\""
		if err != nil {
			msg += ": " + err.Error()
		}
		writeJSON(w, http.StatusBadRequest, ExecuteReply{Error: snakepit.NewError(snakepit.CodeInvalidArgument, msg)})
		return
	}
	ctx := r.Context()
	if req.TimeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	opts := []snakepit.ExecuteOption{snakepit.WithPool(req.Pool)}
	if req.CorrelationID != "" {
		opts = append(opts, snakepit.WithCorrelationID(req.CorrelationID))
	}
	var args any
	if len(req.Args) > 0 {
		args = req.Args
	}
	res, err := s.app.Execute(ctx, req.Tool, args, opts...)
	if err != nil {
		var se *snakepit.Error
		if !errors.As(err, &se) {
			se = snakepit.NewError(snakepit.CodeInternal, err.Error())
		}
		writeJSON(w, http.StatusOK, ExecuteReply{Error: se})
		return
	}
	rep := ExecuteReply{Result: res.JSON, WorkerID: res.WorkerID}
	if res.IsBinary {
		rep.BinaryBytes = len(res.Binary)
	}
	writeJSON(w, http.StatusOK, rep)
}

// Execute calls a tool through the host at ep (POST /api/execute). A call
// that reached the host and failed returns the host's *snakepit.Error.
func Execute(ctx context.Context, ep Endpoint, req ExecuteRequest) (*ExecuteReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep.Address+"/api/execute", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+ep.Token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s (host pid %d): %w", ep.Address, ep.PID, err)
	}
	defer resp.Body.Close()
	var rep ExecuteReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %s", ep.Address, resp.Status)
	}
	if rep.Error != nil {
		return &rep, rep.Error
	}
	return &rep, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeEndpoint writes the file with mode 0600, replacing any earlier one
// atomically.
func writeEndpoint(path string, ep Endpoint) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-*.json")
	if err != nil {
		return fmt.Errorf("admin endpoint file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loopback reports whether addr's host is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
