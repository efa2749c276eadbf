package scaleout

import (
	"strings"
	"testing"
	"time"
)

// TestNginxConf checks the generated balancer configuration: UDP on the
// given address, every replica upstream, hashing on the client's address
// and port, the stream module loaded when given, and no limit on the
// datagrams a replica may send back (QUIC needs many per request).
func TestNginxConf(t *testing.T) {
	b := balancer{Dir: "/tmp/x", Module: StreamModule, Listen: "127.0.0.1:9000",
		Replicas: []string{"127.0.0.1:1", "127.0.0.1:2"}, Timeout: 30 * time.Second, FailTimeoutS: 2}
	conf, err := b.config()
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{
		"daemon off;", "load_module " + StreamModule + ";", "pid /tmp/x/nginx.pid;",
		"hash $remote_addr$remote_port consistent;",
		"server 127.0.0.1:1 max_fails=1 fail_timeout=2s;", "server 127.0.0.1:2 max_fails=1 fail_timeout=2s;",
		"listen 127.0.0.1:9000 udp reuseport;", "proxy_pass cloud;", "proxy_timeout 30000ms;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "proxy_responses") {
		t.Errorf("nginx.conf limits the responses per datagram:\n%s", s)
	}
	b.Module = ""
	if conf, _ := b.config(); strings.Contains(string(conf), "load_module") {
		t.Errorf("nginx.conf loads a module when none is given:\n%s", conf)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []Config{
		{Replicas: 0, Edges: 1, Concurrency: 1, Images: 1, Duration: time.Second, Kill: "none"},
		{Replicas: 1, Edges: 1, Concurrency: 1, Images: 1, Duration: time.Second, Kill: "reboot"},
		{Replicas: 1, Edges: 1, Concurrency: 1, Images: 1, Duration: 0, Kill: "none"},
	} {
		if err := c.check(); err == nil {
			t.Errorf("check(%+v) passed", c)
		}
	}
}
