package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"github.com/tus/tusd/v2/pkg/s3store"
	"golang.org/x/exp/slog"

	"github.com/docuvault/docuvault/internal/devstack"
	root "github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/events"
)

// The hidden subcommands with which the bench re-executes itself, so that
// NATS and tusd run in processes of their own, whose CPU /proc tells apart.
const (
	serveNATSCmd = "internal-serve-nats"
	serveTusdCmd = "internal-serve-tusd"
)

// tusd's S3 credentials reach its child through the environment, not its
// command line (which any user may read).
const (
	tusdAccessKeyEnv = "BENCH_TUSD_S3_ACCESS_KEY"
	tusdSecretKeyEnv = "BENCH_TUSD_S3_SECRET_KEY"
)

// buildDocuVault builds the product binary from the source tree src with
// its own module (its go.mod, not the harness's) into the file bin.
func buildDocuVault(ctx context.Context, src, bin string) (time.Duration, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/docuvault")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go build ./services/docuvault in %s: %v\n%s", src, err, out)
	}
	return time.Since(start), nil
}

// child is a process the harness started: a docuvault role, NATS or tusd.
type child struct {
	name     string
	url      string // http://host:port of the api (docuvault api) or tusd
	pprofURL string // http://host:port of PPROF_ADDR (docuvault roles)
	pid      int
	logPath  string
	exited   chan struct{}
	exitErr  error
	cmd      *exec.Cmd
}

// startProcess starts cmd as the child name, its output in name.log in the
// stack's directory. The child is killed if the harness dies.
func (s *stack) startProcess(name string, cmd *exec.Cmd) (*child, error) {
	lf, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, pid: cmd.Process.Pid, logPath: lf.Name(), exited: make(chan struct{}), cmd: cmd}
	go func() { c.exitErr = cmd.Wait(); lf.Close(); close(c.exited) }()
	return c, nil
}

// startDocuVault runs `docuvault role` (the binary built before the stack
// started) with the stack's settings, overridden by extra, and waits until
// it is ready: the api answers /readyz; the confirmer and the sweeper have
// a pull request waiting on their JetStream consumer, i.e. they consume.
// Every role serves its profiles on PPROF_ADDR.
func (s *stack) startDocuVault(ctx context.Context, role root.Role, name string, extra map[string]string) (*child, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	httpAddr, pprofAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	cmd := exec.Command(s.bin, string(role))
	cmd.Env = append(s.childEnv(extra), "HTTP_ADDR="+httpAddr, "PPROF_ADDR="+pprofAddr)
	c, err := s.startProcess(name, cmd)
	if err != nil {
		return nil, err
	}
	c.pprofURL = "http://" + pprofAddr
	switch role {
	case root.API:
		c.url = "http://" + httpAddr
		err = waitReady(ctx, s.client, c.url+"/readyz", 60*time.Second)
	case root.Confirmer:
		err = s.waitConsuming(ctx, c, events.ConfirmerConsumer.Stream, events.ConfirmerConsumer.Name, 60*time.Second)
	case root.Sweeper:
		err = s.waitConsuming(ctx, c, events.SweeperConsumer.Stream, events.SweeperConsumer.Name, 60*time.Second)
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("docuvault %s child: %w (log: %s)", role, err, c.logPath)
	}
	return c, nil
}

// childEnv is the environment of a `docuvault` child: the harness's, the
// stack's settings over it, extra over those (the last of a duplicated
// name is the one a process sees).
func (s *stack) childEnv(extra map[string]string) []string {
	env := os.Environ()
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// setup runs `docuvault setup` with the stack's settings and MinIO's root
// user, as an operator runs it before the services start: the bucket, the
// identities and their policies, the streams and the migrations, each as
// the stack's binary makes them (a baseline's schema and identities are
// not this tree's). A release older than the per-role credentials reads
// one service identity, MINIO_ACCESS_KEY, and says it is required when it
// is missing: the stack then gives it one, to its children only (this
// tree's config refuses that variable).
func (s *stack) setup(ctx context.Context) error {
	admin := map[string]string{"MINIO_ADMIN_ACCESS_KEY": s.ds.MinIOAccessKey, "MINIO_ADMIN_SECRET_KEY": s.ds.MinIOSecretKey}
	run := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, s.bin, "setup")
		cmd.Env = s.childEnv(admin)
		return cmd.CombinedOutput()
	}
	out, err := run()
	if err != nil && strings.Contains(string(out), "MINIO_ACCESS_KEY is required") {
		s.env["MINIO_ACCESS_KEY"], s.env["MINIO_SECRET_KEY"] = "bench-service", randomHex(16)
		out, err = run()
	}
	if err != nil {
		return fmt.Errorf("docuvault setup: %v\n%s", err, out)
	}
	return nil
}

// waitConsuming polls until the durable consumer name on stream has a pull
// request waiting, which c's consumer loop keeps open while it runs.
func (s *stack) waitConsuming(ctx context.Context, c *child, stream, name string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if err := c.alive(); err != nil {
			return err
		}
		cons, err := s.h.JS.Consumer(ctx, stream, name)
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = cons.Info(ctx); err == nil && info.NumWaiting > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer %s on %s not consuming after %v (last error: %v)", name, stream, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startNATSChild re-executes the bench as NATS (devstack's embedded server,
// as `docuvault dev` runs it) on addr, its store in the stack's directory,
// and waits until its JetStream answers.
func (s *stack) startNATSChild(ctx context.Context, addr string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, serveNATSCmd, "-addr", addr, "-store", filepath.Join(s.dir, "nats"))
	c, err := s.startProcess("nats", cmd)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = c.alive()
		if err == nil {
			err = natsAnswers("nats://" + addr)
		}
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || c.alive() != nil || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("nats child: %w (log: %s)", errors.Join(err, ctx.Err()), c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsAnswers connects to url and asks JetStream for the account's limits.
func natsAnswers(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// startTusdChild re-executes the bench as tusd v2 with its S3 store on the
// stack's MinIO, on a loopback port, and waits until it answers.
func (s *stack) startTusdChild(ctx context.Context, partUploads int) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	tmp := filepath.Join(s.dir, "tusd-tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, serveTusdCmd, "-addr", addr, "-endpoint", s.ds.MinIOEndpoint, "-bucket", tusdBucket,
		"-region", s.cfg.MinIORegion, "-part-uploads", fmt.Sprint(partUploads), "-tmp", tmp)
	cmd.Env = append(os.Environ(), tusdAccessKeyEnv+"="+s.ds.MinIOAccessKey, tusdSecretKeyEnv+"="+s.ds.MinIOSecretKey)
	c, err := s.startProcess("tusd", cmd)
	if err != nil {
		return nil, err
	}
	c.url = "http://" + addr + "/files/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, c.url, nil)
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			return c, nil
		}
		if time.Now().After(deadline) || c.alive() != nil || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("tusd child: %w (log: %s)", errors.Join(err, c.alive(), ctx.Err()), c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the child with SIGTERM (SIGKILL after 20 s) and waits for it.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// alive returns an error if the child has exited.
func (c *child) alive() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s (pid %d) exited: %v (log: %s)", c.name, c.pid, c.exitErr, c.logPath)
	default:
		return nil
	}
}

// serveChild runs the hidden subcommand cmd (the bench re-executed as NATS
// or tusd) until SIGTERM.
func serveChild(cmd string, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case serveNATSCmd:
		return serveNATS(ctx, args)
	case serveTusdCmd:
		return serveTusd(ctx, args)
	}
	return fmt.Errorf("unknown subcommand %q", cmd)
}

// serveNATS runs devstack's embedded NATS with JetStream, as `docuvault
// dev` does, in this process.
func serveNATS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(serveNATSCmd, flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address, host:port")
	store := fs.String("store", "", "JetStream store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Str("service", "nats").Logger().Level(zerolog.WarnLevel)
	n, err := devstack.StartNATS(*addr, *store, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	n.Stop()
	return nil
}

// serveTusd runs tusd v2 with its S3 store: content hashes off (the
// fastest tusd setting), checksums of the AWS SDK only when required, the
// other settings tusd's defaults.
func serveTusd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(serveTusdCmd, flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address, host:port")
	endpoint := fs.String("endpoint", "", "MinIO host:port")
	bucket := fs.String("bucket", "", "bucket")
	region := fs.String("region", "", "region")
	partUploads := fs.Int("part-uploads", 10, "s3store concurrent part uploads")
	tmp := fs.String("tmp", "", "s3store temporary directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s3c := s3.New(s3.Options{
		Region:                     *region,
		BaseEndpoint:               aws.String("http://" + *endpoint),
		UsePathStyle:               true,
		Credentials:                aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(os.Getenv(tusdAccessKeyEnv), os.Getenv(tusdSecretKeyEnv), "")),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	store := s3store.New(*bucket, s3c)
	store.DisableContentHashes = true
	store.SetConcurrentPartUploads(*partUploads)
	store.TemporaryDirectory = *tmp
	composer := tusd.NewStoreComposer()
	store.UseIn(composer)
	memorylocker.New().UseIn(composer)
	h, err := tusd.NewHandler(tusd.Config{
		BasePath:      "/files/",
		StoreComposer: composer,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", h))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
