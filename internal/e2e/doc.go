// Package e2e holds the loopback tests that run an edge and a cloud
// together: protocol and transport mechanics on a small Go-computed bundle
// (bundle/bundletest), and the acceptance test on the shipped bundle with
// the real engines.
package e2e
