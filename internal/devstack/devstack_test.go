package devstack

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPortsNamesTheSetting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	if err := CheckPorts(Port{Name: "HTTP address", Addr: freeAddr, Setting: "HTTP_ADDR or --http-addr"}); err != nil {
		t.Errorf("CheckPorts(free %s) = %v, want nil", freeAddr, err)
	}
	err = CheckPorts(
		Port{Name: "HTTP address", Addr: taken, Setting: "HTTP_ADDR or --http-addr"},
		Port{Name: "NATS address", Addr: freeAddr, Setting: "--nats-addr"},
		Port{Name: "MinIO address", Addr: freeAddr, Setting: "DEV_MINIO_ADDR or --minio-addr"}, // the same as NATS
	)
	for _, want := range []string{
		"HTTP address " + taken + " is taken: set HTTP_ADDR or --http-addr",
		"MinIO address " + freeAddr + " is taken: set DEV_MINIO_ADDR or --minio-addr",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPorts error = %v, want it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "NATS") {
		t.Errorf("CheckPorts blames the free NATS address: %v", err)
	}
}

func TestSplitAddrWantsAPort(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, _, err := splitAddr(addr, "--nats-addr"); err == nil || !strings.Contains(err.Error(), "--nats-addr") {
			t.Errorf("splitAddr(%q) = %v, want an error naming --nats-addr", addr, err)
		}
	}
	if host, port, err := splitAddr("127.0.0.1:4222", "--nats-addr"); err != nil || host != "127.0.0.1" || port != 4222 {
		t.Errorf("splitAddr(127.0.0.1:4222) = %q, %d, %v", host, port, err)
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
		"localhost:8080": "localhost:8080",
		"10.0.0.2:9000":  "10.0.0.2:9000",
	} {
		if got := DialAddr(in); got != want {
			t.Errorf("DialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactedDatabaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5433/docuvault?sslmode=disable": "postgres://postgres@127.0.0.1:5433/docuvault?sslmode=disable",
		"postgres://app:s3cret@db:5432/docuvault":                      "postgres://app@db:5432/docuvault",
		"postgresql://db/docuvault?password=s3cret&sslmode=disable":    "postgresql://db/docuvault?sslmode=disable",
		"host=db user=app password=s3cret dbname=docuvault":            "(DATABASE_URL)",
	} {
		if got := (&Stack{DatabaseURL: in}).RedactedDatabaseURL(); got != want {
			t.Errorf("RedactedDatabaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"15", "9.6", 1}, {"9.6", "10", -1}, {"16", "16", 0}, {"17", "16", 1}} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFindPGBinDirMissingSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPGBinDir(filepath.Join(t.TempDir(), "*", "bin"), "")
	want := "apt-get install postgresql, or set DATABASE_URL"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("findPGBinDir() error = %v, want one containing %q", err, want)
	}
}
