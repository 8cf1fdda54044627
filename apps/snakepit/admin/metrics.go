package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/snakepit-go/snakepit/internal/auth"
	"github.com/snakepit-go/snakepit/internal/instance"
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
	*httpServer
	tokenFile string
}

// ServeMetrics serves handler at /metrics on opts.Address. Unless NoAuth,
// every request must carry the token of instanceDir's MetricsTokenFile
// (made now if missing) as "Authorization: Bearer TOKEN".
func ServeMetrics(instanceDir string, handler http.Handler, opts MetricsOptions) (*MetricsServer, error) {
	if !opts.AllowRemote && !loopback(opts.Address) {
		return nil, fmt.Errorf("metrics address %s is not a loopback address (set allow_remote to serve it elsewhere)", opts.Address)
	}
	s := &MetricsServer{}
	if !opts.NoAuth {
		s.tokenFile = filepath.Join(instanceDir, MetricsTokenFile)
		token, err := instance.SecretFile(s.tokenFile, auth.NewSecret)
		if err != nil {
			return nil, fmt.Errorf("metrics token: %w", err)
		}
		handler = bearer(token, handler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler)
	var err error
	s.httpServer, err = serveHTTP(opts.Address, mux, opts.Logger, "metrics endpoint")
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TokenFile is the file holding the bearer token ("" without auth).
func (s *MetricsServer) TokenFile() string { return s.tokenFile }

// httpServer is a listener serving a handler until Close (the admin and
// the metrics endpoints).
type httpServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// serveHTTP listens on addr and serves h; what names it in errors and logs.
func serveHTTP(addr string, h http.Handler, logger *slog.Logger, what string) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &httpServer{addr: ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(what+" stopped", "error", err)
		}
	}()
	return s, nil
}

// Address is the endpoint's host:port.
func (s *httpServer) Address() string { return s.addr }

// Close stops the server and waits for it.
func (s *httpServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// bearerOrCookie is bearer that also takes the token from the page's cookie.
func bearerOrCookie(token string, next http.Handler) http.Handler {
	viaHeader := bearer(token, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(cookieName); err == nil && auth.Equal(c.Value, token) {
			next.ServeHTTP(w, r)
			return
		}
		viaHeader.ServeHTTP(w, r)
	})
}

// bearer admits requests carrying "Authorization: Bearer <token>".
func bearer(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !auth.Equal(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="snakepit"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
