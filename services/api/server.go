package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Server is the API's HTTP server.
type Server struct {
	handler http.Handler
	ln      net.Listener
	log     zerolog.Logger
	closing chan struct{}
	// readHeaderTimeout bounds how long a client may take to send its
	// request headers (slowloris).
	readHeaderTimeout time.Duration
}

// New returns a Server answering d's routes on ln; readHeaderTimeout
// bounds how long a client may take to send its request headers.
func New(d Deps, ln net.Listener, readHeaderTimeout time.Duration) *Server {
	closing := make(chan struct{})
	d.Closing = closing
	return &Server{handler: Handler(d), ln: ln, log: d.Log, closing: closing, readHeaderTimeout: readHeaderTimeout}
}

// shutdownGrace bounds how long in-flight requests may finish after ctx ends.
const shutdownGrace = 15 * time.Second

// Run answers requests until ctx ends; then it shuts down gracefully:
// in-flight requests finish (for up to shutdownGrace) and event streams end.
func (s *Server) Run(ctx context.Context) error {
	ln := s.ln
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.log.WithContext(context.Background()) },
	}
	var closeOnce sync.Once
	srv.RegisterOnShutdown(func() { closeOnce.Do(func() { close(s.closing) }) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("api listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
