//go:build !unix

package classify_test

import "time"

// processStart stands in for CPU time where getrusage is missing.
var processStart = time.Now()

// cpuTime returns the wall-clock time since the tests started, which
// stands in for the CPU time of one busy goroutine on systems without
// getrusage.
func cpuTime() time.Duration { return time.Since(processStart) }
