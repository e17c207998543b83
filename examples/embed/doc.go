// Package embed is a module of its own that uses syncmq the way a
// service in another repository does: through its public packages only,
// which the go command enforces here (an internal package of
// github.com/syncmq/syncmq cannot be imported from this module). Its
// test runs a publisher on tls:// endpoints and two subscribers, with
// certificates it makes with crypto/x509.
//
// Run it from this directory: go test -race ./...
package embed
