//go:build race

package classify_test

// raceEnabled reports a build with the race detector, which slows the code
// down some tenfold.
const raceEnabled = true
