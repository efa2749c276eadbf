// Package deploy holds the container image and the Kubernetes manifests of
// the cloud (docs/DEPLOY.md); its tests check that the image runs and that
// the manifests hold together. It has test files only.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/internal/certs"
)

// TestImageServesEdge builds the image with `make image` (podman, from
// scratch), runs `splitstream cloud` in it on the host's loopback with
// mutual TLS from mounted certificates, and streams test images to it with
// the same static binary as the edge: every image must come back answered.
func TestImageServesEdge(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed, so the image cannot be built or run here (Debian: apt-get install podman runc)")
	}
	if testing.Short() {
		t.Skip("-short: building the image takes a while")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	const image = "localhost/splitstream:imagetest"
	const bundle = "fmnist-es-b0.3"
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	run(t, root, nil, "make", "image", "GO="+gobin, "IMAGE="+image, "IMAGE_BUNDLES=models/zoo/"+bundle)
	conf := []string{"CONTAINERS_CONF=" + filepath.Join(root, "deploy", "containers.conf")}
	t.Cleanup(func() { exec.Command("podman", "rmi", "--force", image).Run() })

	// The image's promises: a numeric non-root user, no shell.
	if user := strings.TrimSpace(run(t, root, conf, "podman", "image", "inspect", "--format", "{{.Config.User}}", image)); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", user)
	}
	if out, err := podman(conf, "run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true").CombinedOutput(); err == nil {
		t.Errorf("the image has a shell: /bin/sh ran (%s)", out)
	}

	// Certificates: the server's three files, readable by the image's
	// user, as the Kubernetes Secret volume with fsGroup provides them.
	dir := t.TempDir()
	set, err := certs.New([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	secret := t.TempDir()
	if err := os.Chmod(secret, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{certs.ServerFile, set.Server}, {certs.ServerKeyFile, set.ServerKey}, {certs.CAFile, set.CA}} {
		if err := os.WriteFile(filepath.Join(secret, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	addr := freeUDP(t)
	name := fmt.Sprintf("splitstream-imagetest-%d", os.Getpid())
	run(t, root, conf, "podman", "run", "--detach", "--name", name, "--network", "host",
		"--volume", secret+":/certs:ro", image,
		"cloud", "--listen", addr, "--bundle", "/bundles/"+bundle,
		"--cert", "/certs/"+certs.ServerFile, "--key", "/certs/"+certs.ServerKeyFile, "--client-ca", "/certs/"+certs.CAFile)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := podman(conf, "logs", name).CombinedOutput()
			t.Logf("container logs:\n%s", out)
		}
		podman(conf, "rm", "--force", "--time", "5", name).Run()
	})
	waitLog(t, conf, name, "cloud serving", 60*time.Second)

	// The edge: the image's own binary, on the host.
	const images = 12
	inputs := t.TempDir()
	for i := range images {
		src := filepath.Join(root, "models", "zoo", "testset", fmt.Sprintf("scene_%04d.png", i))
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(inputs, filepath.Base(src)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "edge.jsonl")
	run(t, root, nil, filepath.Join(root, "bin", "image", "splitstream"), "edge",
		"--server", addr, "--bundle", filepath.Join(root, "models", "zoo", bundle), "--input", inputs,
		"--ca", filepath.Join(dir, certs.CAFile), "--cert", filepath.Join(dir, certs.ClientFile),
		"--key", filepath.Join(dir, certs.ClientKeyFile), "--timeout", "60s", "--out", out)
	ok := countOK(t, out)
	if ok != images {
		t.Fatalf("%d of %d images answered by the container", ok, images)
	}
	t.Logf("the container answered all %d images", ok)
}

func podman(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// run runs a command in dir and fails the test if it fails; it returns
// the standard output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// freeUDP returns a loopback UDP address that was free a moment ago.
func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// waitLog waits until the container's log holds text, or fails.
func waitLog(t *testing.T, env []string, name, text string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := podman(env, "logs", name).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte(text)) {
			return
		}
	}
	t.Fatalf("container %s did not log %q within %v", name, text, limit)
}

// countOK counts the edge's JSON lines with status "ok".
func countOK(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("edge output: %v: %s", err, sc.Bytes())
		}
		if rec.Status == "ok" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
