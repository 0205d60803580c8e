//go:build !race

package web

// raceEnabled is false: pools keep what is put back.
const raceEnabled = false
