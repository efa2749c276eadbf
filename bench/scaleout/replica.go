package scaleout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// replica is one cloud process: `splitstream cloud` on a loopback UDP
// port, with its admin port for /readyz. It keeps its ports across
// restarts, as a pod behind a Service keeps its endpoint.
type replica struct {
	id          int
	addr, admin string
	args        []string
	binary, log string
	cmd         *exec.Cmd
	exited      chan error
}

// start runs the process and waits until its /readyz answers 200.
func (r *replica) start(ctx context.Context) error {
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	r.cmd = exec.Command(r.binary, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("replica %d: %w", r.id, err)
	}
	r.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(r.cmd, r.exited)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if ready(r.admin) {
			return nil
		}
		select {
		case err := <-r.exited:
			r.exited <- err
			return fmt.Errorf("replica %d exited before it was ready (%v); see %s", r.id, err, r.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %d not ready after 2 minutes; see %s", r.id, r.log)
		}
	}
}

// stop sends sig (SIGTERM: drain; SIGKILL: crash) and waits for the exit.
func (r *replica) stop(sig syscall.Signal) {
	r.cmd.Process.Signal(sig)
	err := <-r.exited
	r.exited <- err
}

var readyClient = &http.Client{Timeout: time.Second}

func ready(admin string) bool {
	resp, err := readyClient.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// connections reads the replica's splitstream_cloud_connections gauge from
// its /metrics (0 when it cannot).
func (r *replica) connections() float64 {
	resp, err := readyClient.Get("http://" + r.admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "splitstream_cloud_connections "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}

// busiest returns the replica that holds the most connections.
func busiest(reps []*replica) *replica {
	best, most := reps[0], -1.0
	for _, r := range reps {
		if n := r.connections(); n > most {
			best, most = r, n
		}
	}
	return best
}

// freePort returns a loopback port that is free now for network (udp or
// tcp).
func freePort(network string) (int, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
