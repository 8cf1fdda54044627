package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// MetricsTokenFile is the file in the instance directory holding the
// bearer token /metrics requires (made once, mode 0600, kept across
// restarts so a Prometheus scrape config can point at it with
// credentials_file).
const MetricsTokenFile = "metrics.token"

// NewMeterProvider returns an OpenTelemetry MeterProvider whose metrics
// (with the Go runtime's and the process's) are served in Prometheus text
// format by the returned handler. Shut the provider down when done.
func NewMeterProvider() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// MetricsOptions configure ServeMetrics.
type MetricsOptions struct {
	// Address is host:port; a non-loopback host is refused unless AllowRemote.
	Address     string
	AllowRemote bool
	// NoAuth serves /metrics without the bearer token (anyone who can
	// reach the address reads it).
	NoAuth bool
	Logger *slog.Logger
}

// MetricsServer serves /metrics.
type MetricsServer struct {
	srv       *http.Server
	addr      string
	tokenFile string
	done      chan struct{}
}

// ServeMetrics serves handler at /metrics on opts.Address. Unless NoAuth,
// every request must carry the token of instanceDir's MetricsTokenFile
// (made now if missing) as "Authorization: Bearer TOKEN".
func ServeMetrics(instanceDir string, handler http.Handler, opts MetricsOptions) (*MetricsServer, error) {
	if !opts.AllowRemote && !loopback(opts.Address) {
		return nil, fmt.Errorf("metrics address %s is not a loopback address (set allow_remote to serve it elsewhere)", opts.Address)
	}
	s := &MetricsServer{done: make(chan struct{})}
	if !opts.NoAuth {
		s.tokenFile = filepath.Join(instanceDir, MetricsTokenFile)
		token, err := metricsToken(s.tokenFile)
		if err != nil {
			return nil, err
		}
		handler = bearer(token, handler)
	}
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	s.addr = ln.Addr().String()
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint stopped", "error", err)
		}
	}()
	return s, nil
}

// Address is the endpoint's host:port.
func (s *MetricsServer) Address() string { return s.addr }

// TokenFile is the file holding the bearer token ("" without auth).
func (s *MetricsServer) TokenFile() string { return s.tokenFile }

// Close stops the server.
func (s *MetricsServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// metricsToken reads the token file, making it (mode 0600) when missing.
func metricsToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // made meanwhile by another host of the instance
		return metricsToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return t, f.Close()
}

// bearerOrCookie is bearer that also takes the token from the page's cookie.
func bearerOrCookie(token string, next http.Handler) http.Handler {
	want := []byte(token)
	viaHeader := bearer(token, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(cookieName); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		viaHeader.ServeHTTP(w, r)
	})
}

func bearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="snakepit"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
