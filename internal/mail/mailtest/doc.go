// Package mailtest runs a real SMTP server inside a test process, so tests
// send mail through the same code as production and read what arrived: the
// next message to an address, and a link out of it.
//
// A Server listens on 127.0.0.1 on a free port, optionally with STARTTLS or
// implicit TLS (a certificate made at start that TLSConfig trusts) and with
// PLAIN authentication (offered only over TLS, as a real server would).
// New registers Close with the test, which stops the server and waits for
// every goroutine it started.
package mailtest
