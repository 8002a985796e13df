// Package probe owns how often the unauthenticated probes, /readyz and
// /metrics, reach the backends: an answer is reused while it is at most
// MaxAge old, and concurrent callers share one call. Anyone who can reach
// the port can send probes, so their cost must not grow with their number.
package probe
