package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splitstream/splitstream/bench/link"
)

// runDir is where `ip netns` keeps its named namespaces.
const runDir = "/run/netns"

// Available reports, wrapping ErrUnavailable, why the namespace mode cannot
// run here: not root, or ip or tc (Debian package iproute2) missing.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (install iproute2): %v", ErrUnavailable, tool, err)
		}
	}
	return nil
}

// Do runs fn on an OS thread that has joined the namespace, and waits for
// it. Sockets that fn creates belong to the namespace for good; goroutines
// that fn starts do not run in it.
func (n *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine
		// instead of going back to the pool in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join(runDir, n.name))
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", n.name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns %s: setns: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

var (
	seq   atomic.Uint64
	live  = map[*Pair]struct{}{}
	liveM sync.Mutex
	sigCh chan os.Signal
)

// New creates the two namespaces of a pair, joins them with a veth pair
// (EdgeIP on the edge's end, CloudIP on the cloud's), and shapes each
// direction that has a rate with tbf from cfg's rates and queues. It first removes stale
// namespaces (CleanupStale). On error nothing is left behind.
func New(ctx context.Context, cfg link.Config) (*Pair, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	if err := CleanupStale(ctx); err != nil {
		slog.Warn("netns: removing stale namespaces", "err", err)
	}
	base := fmt.Sprintf("%s%d-%d-", Prefix, os.Getpid(), seq.Add(1))
	p := &Pair{Edge: &Namespace{base + "edge"}, Cloud: &Namespace{base + "cloud"}, cfg: cfg}
	register(p)
	if err := p.setup(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("netns: %w", err), p.Close())
	}
	return p, nil
}

const (
	edgeDev  = "edge0"
	cloudDev = "cloud0"
)

func (p *Pair) setup(ctx context.Context) error {
	e, c := p.Edge.name, p.Cloud.name
	cmds := [][]string{
		{"ip", "netns", "add", e},
		{"ip", "netns", "add", c},
		{"ip", "link", "add", edgeDev, "netns", e, "type", "veth", "peer", "name", cloudDev, "netns", c},
		{"ip", "-n", e, "addr", "add", EdgeIP.String() + "/30", "dev", edgeDev},
		{"ip", "-n", c, "addr", "add", CloudIP.String() + "/30", "dev", cloudDev},
		{"ip", "-n", e, "link", "set", "lo", "up"},
		{"ip", "-n", c, "link", "set", "lo", "up"},
		{"ip", "-n", e, "link", "set", edgeDev, "up"},
		{"ip", "-n", c, "link", "set", cloudDev, "up"},
	}
	if q := tbfArgs(p.cfg.Up); q != nil {
		cmds = append(cmds, append([]string{"tc", "-n", e, "qdisc", "add", "dev", edgeDev, "root"}, q...))
	}
	if q := tbfArgs(p.cfg.Down); q != nil {
		cmds = append(cmds, append([]string{"tc", "-n", c, "qdisc", "add", "dev", cloudDev, "root"}, q...))
	}
	for _, args := range cmds {
		if err := run(ctx, args...); err != nil {
			return err
		}
	}
	return p.waitUp(ctx)
}

// upTimeout bounds how long New waits for the veth pair to come up.
const upTimeout = 5 * time.Second

// waitUp waits until both ends of the veth pair are operationally up. The
// end that is set up first gets its carrier only when its peer comes up,
// and the kernel then attaches its qdisc from its link-watch work, which
// runs at most once a second; until then the end drops everything sent
// through it (ARP requests included, which are retried only after a
// second), so a trace or a measurement that starts at once would lose its
// first second.
func (p *Pair) waitUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	for _, end := range []struct{ ns, dev string }{{p.Edge.name, edgeDev}, {p.Cloud.name, cloudDev}} {
		for {
			out, err := exec.CommandContext(ctx, "ip", "-n", end.ns, "-j", "link", "show", "dev", end.dev).Output()
			var links []struct {
				OperState string `json:"operstate"`
			}
			if err == nil && json.Unmarshal(out, &links) == nil && len(links) == 1 && links[0].OperState == "UP" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s in %s not up after %v (ip: %v, %s)", end.dev, end.ns, upTimeout, err, strings.TrimSpace(string(out)))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// Default tbf sizes where the link leaves them open.
const (
	// minBurst is the smallest tbf bucket: a full Ethernet frame, with
	// room to spare, since tbf drops packets larger than its bucket.
	minBurst = 2000
	// defaultLimit is tbf's queue when the link sets none (tbf needs one).
	defaultLimit = 4 << 20
	// packetBytes converts a queue in packets to tbf's bytes.
	packetBytes = 1500
)

// tbfArgs returns the qdisc arguments that shape a direction, or nil if it
// has no rate limit. The size table's overhead of -14 takes the Ethernet
// header off every packet, so tbf counts IP packets, as the relay does.
func tbfArgs(d link.Direction) []string {
	if d.RateBps <= 0 {
		return nil
	}
	limit := defaultLimit
	switch {
	case d.QueueBytes > 0 && d.QueuePackets > 0:
		limit = min(d.QueueBytes, d.QueuePackets*packetBytes)
	case d.QueueBytes > 0:
		limit = d.QueueBytes
	case d.QueuePackets > 0:
		limit = d.QueuePackets * packetBytes
	}
	return []string{
		"stab", "overhead", "-14",
		"tbf",
		"rate", strconv.FormatInt(int64(math.Round(d.RateBps)), 10) + "bit",
		"burst", strconv.Itoa(max(d.BurstBytes, minBurst)),
		"limit", strconv.Itoa(limit),
	}
}

// Relay starts a link.Relay inside the cloud namespace, listening on
// CloudIP, that forwards to target (an address in the cloud namespace, for
// example its loopback) with the delay, jitter and loss of the pair's link,
// and its traces, which start with the relay (RelayConfig). The edge dials
// relay.Addr(). Close closes it too.
func (p *Pair) Relay(ctx context.Context, target string, seed uint64) (*link.Relay, error) {
	listen := net.JoinHostPort(CloudIP.String(), "0")
	r, err := link.NewRelay(ctx, listen, target, RelayConfig(p.cfg), seed, link.WithSocketFunc(p.Cloud.Do))
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		r.Close()
		return nil, fmt.Errorf("netns: pair %s closed", p.Edge.name)
	}
	p.relays = append(p.relays, r)
	return r, nil
}

// QdiscStats returns the counters of the tbf qdiscs that shape the uplink
// (on the edge's end of the veth pair) and the downlink (on the cloud's
// end); a direction without a rate limit has none and gives zeros.
func (p *Pair) QdiscStats(ctx context.Context) (up, down QdiscStats, err error) {
	get := func(ns, dev string, d link.Direction) (QdiscStats, error) {
		if d.RateBps <= 0 {
			return QdiscStats{}, nil
		}
		out, err := exec.CommandContext(ctx, "tc", "-n", ns, "-s", "-j", "qdisc", "show", "dev", dev).Output()
		if err != nil {
			return QdiscStats{}, fmt.Errorf("netns: tc qdisc show in %s: %w", ns, err)
		}
		return parseQdiscStats(out)
	}
	if up, err = get(p.Edge.name, edgeDev, p.cfg.Up); err != nil {
		return
	}
	down, err = get(p.Cloud.name, cloudDev, p.cfg.Down)
	return
}

// Close closes the pair's relays and deletes its namespaces (which
// deletes the veth pair and its qdiscs). Sockets still open in a namespace
// keep working until closed. Close is safe to call twice.
func (p *Pair) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.err
	}
	p.closed = true
	var errs []error
	for _, r := range p.relays {
		r.Close()
	}
	for _, ns := range []*Namespace{p.Edge, p.Cloud} {
		if err := deleteNS(context.Background(), ns.name); err != nil {
			errs = append(errs, err)
		}
	}
	unregister(p)
	p.err = errors.Join(errs...)
	return p.err
}

// deleteNS deletes a namespace; one that is not there is not an error.
func deleteNS(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join(runDir, name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return run(ctx, "ip", "netns", "delete", name)
}

// CleanupStale deletes the namespaces named with Prefix whose creating
// process (the pid in the name) no longer runs.
func CleanupStale(ctx context.Context) error {
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netns: list %s: %w", runDir, err)
	}
	var errs []error
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || processRuns(pid) {
			continue
		}
		if err := deleteNS(ctx, e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownerPID reads the pid from a name made by New.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil && pid > 0
}

func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// register records a live pair and, for the first, starts watching for
// signals.
func register(p *Pair) {
	liveM.Lock()
	defer liveM.Unlock()
	live[p] = struct{}{}
	if sigCh == nil {
		sigCh = make(chan os.Signal, 1)
		signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go onSignal(sigCh)
	}
}

// unregister forgets a pair and, after the last, stops watching signals.
func unregister(p *Pair) {
	liveM.Lock()
	defer liveM.Unlock()
	delete(live, p)
	if len(live) == 0 && sigCh != nil {
		signal.Stop(sigCh)
		close(sigCh)
		sigCh = nil
	}
}

// onSignal removes every live pair when a signal arrives, then raises the
// signal again, now without this package's handler.
func onSignal(ch chan os.Signal) {
	sig, ok := <-ch
	if !ok {
		return
	}
	liveM.Lock()
	pairs := make([]*Pair, 0, len(live))
	for p := range live {
		pairs = append(pairs, p)
	}
	liveM.Unlock()
	for _, p := range pairs {
		p.Close()
	}
	liveM.Lock()
	if sigCh == ch {
		signal.Stop(ch)
		sigCh = nil
	}
	liveM.Unlock()
	if s, ok := sig.(syscall.Signal); ok {
		syscall.Kill(os.Getpid(), s)
	}
}
