//go:build !race

package e2e

// raceEnabled is false: the tests run without the race detector, and so
// does the server they build.
const raceEnabled = false
