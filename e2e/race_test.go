//go:build race

package e2e

// raceEnabled builds the server with the race detector when the tests run
// with it, so a data race the end-to-end flows provoke in the server fails
// the test that provoked it.
const raceEnabled = true
