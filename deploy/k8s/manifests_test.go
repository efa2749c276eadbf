// Package k8s holds the Kubernetes manifests of the cloud, a kustomize base
// (docs/DEPLOY.md). Its tests decode every manifest strictly with the
// official API types and check that the pieces agree with each other, with
// the image and with the cloud's flags and metrics. It has test files only.
package k8s

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/cloud/quiclb"
)

// adminPaths are the paths that `splitstream cloud --admin ADDR` serves:
// those the server's admin handler answers (docs/DEPLOY.md, "Admin port").
var adminPaths = servedAdminPaths()

func servedAdminPaths() []string {
	srv, err := cloud.New(nil, cloud.Options{})
	if err != nil {
		panic(err)
	}
	var served []string
	for _, p := range []string{"/livez", "/readyz", "/healthz", "/metrics", "/debug"} {
		rec := httptest.NewRecorder()
		srv.Admin().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound {
			served = append(served, p)
		}
	}
	return served
}

// kustomization is the part of kustomize's Kustomization that the base
// uses, decoded strictly so that a field this test does not know fails.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// base is every manifest of the base, decoded.
type base struct {
	deploy *appsv1.Deployment
	svcs   []*corev1.Service
	hpa    *autoscalingv2.HorizontalPodAutoscaler
	pdb    *policyv1.PodDisruptionBudget
}

// decode reads a YAML file strictly into out: unknown or duplicate fields
// are errors.
func decode(t *testing.T, path string, out any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// load decodes the kustomization and every resource it lists, each with
// the official type of its apiVersion and kind.
func load(t *testing.T) base {
	t.Helper()
	var k kustomization
	decode(t, "kustomization.yaml", &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	var b base
	for _, r := range k.Resources {
		data, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(data, &tm); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
		case "apps/v1 Deployment":
			if b.deploy != nil {
				t.Fatalf("%s: a second Deployment", r)
			}
			b.deploy = &appsv1.Deployment{}
			decode(t, r, b.deploy)
		case "v1 Service":
			s := &corev1.Service{}
			decode(t, r, s)
			b.svcs = append(b.svcs, s)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			b.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			decode(t, r, b.hpa)
		case "policy/v1 PodDisruptionBudget":
			b.pdb = &policyv1.PodDisruptionBudget{}
			decode(t, r, b.pdb)
		default:
			t.Fatalf("%s: %q is not a kind this base should hold", r, gvk)
		}
	}
	if b.deploy == nil || b.hpa == nil || b.pdb == nil || len(b.svcs) != 2 {
		t.Fatalf("the base needs a Deployment, two Services, an HPA and a PDB; it has %v", k.Resources)
	}
	return b
}

// TestEveryFileListed: every manifest here is in the kustomization (but
// the adapter's rule, which belongs to another namespace), and every
// listed file exists.
func TestEveryFileListed(t *testing.T) {
	var k kustomization
	decode(t, "kustomization.yaml", &k)
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if f != "kustomization.yaml" && f != "prometheus-adapter.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml lists %s, which is not here", r)
		}
	}
}

// cloudArgs parses the container's arguments with the cloud's flags that
// the manifests use: a flag the cloud does not take fails here.
type cloudArgs struct {
	listen, admin, bundles, cert, key, clientCA, serverID string
	drainDelay, shutdownTimeout                           time.Duration
}

func parseArgs(t *testing.T, c corev1.Container) cloudArgs {
	t.Helper()
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "cloud" {
		t.Fatalf("container %s: command %q args %q: want the image's entrypoint with `cloud ...`", c.Name, c.Command, c.Args)
	}
	var a cloudArgs
	fs := flag.NewFlagSet("cloud", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.listen, "listen", "", "")
	fs.StringVar(&a.admin, "admin", "", "")
	fs.StringVar(&a.bundles, "bundle", "", "")
	fs.StringVar(&a.cert, "cert", "", "")
	fs.StringVar(&a.key, "key", "", "")
	fs.StringVar(&a.clientCA, "client-ca", "", "")
	fs.StringVar(&a.serverID, "server-id", "", "")
	fs.DurationVar(&a.drainDelay, "drain-delay", 0, "")
	fs.DurationVar(&a.shutdownTimeout, "shutdown-timeout", 0, "")
	if err := fs.Parse(c.Args[1:]); err != nil || fs.NArg() != 0 {
		t.Fatalf("container %s args %q: %v (left %q)", c.Name, c.Args, err, fs.Args())
	}
	for name, v := range map[string]string{"listen": a.listen, "admin": a.admin, "bundle": a.bundles, "cert": a.cert, "key": a.key, "client-ca": a.clientCA, "server-id": a.serverID} {
		if v == "" {
			t.Errorf("container %s: no --%s", c.Name, name)
		}
	}
	return a
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment %s: %d containers, want 1", d.Name, len(cs))
	}
	return cs[0]
}

// containerPort finds the container's port by name.
func containerPort(c corev1.Container, name string) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// resolves checks that a Service or probe port (a number or a name) is
// the container's port named want, with protocol proto.
func resolves(t *testing.T, c corev1.Container, ref intstr.IntOrString, want string, proto corev1.Protocol, what string) {
	t.Helper()
	p, ok := containerPort(c, want)
	if !ok {
		t.Fatalf("%s: the container has no port %q", what, want)
	}
	match := (ref.Type == intstr.String && ref.StrVal == p.Name) || (ref.Type == intstr.Int && ref.IntVal == p.ContainerPort)
	if !match || p.Protocol != proto {
		t.Errorf("%s: port %s, want the container's %s (%d/%s)", what, ref.String(), p.Name, p.ContainerPort, proto)
	}
}

// TestPortsMatchFlags: the container's ports are the ports of --listen
// (UDP) and --admin (TCP), and the Services and the scrape annotation
// reach them.
func TestPortsMatchFlags(t *testing.T) {
	b := load(t)
	c := container(t, b.deploy)
	a := parseArgs(t, c)
	quic, ok := containerPort(c, "quic")
	if !ok || quic.Protocol != corev1.ProtocolUDP || quic.ContainerPort != port(t, a.listen) {
		t.Errorf("container port quic %+v: want UDP %d from --listen=%s", quic, port(t, a.listen), a.listen)
	}
	admin, ok := containerPort(c, "admin")
	if !ok || admin.Protocol != corev1.ProtocolTCP || admin.ContainerPort != port(t, a.admin) {
		t.Errorf("container port admin %+v: want TCP %d from --admin=%s", admin, port(t, a.admin), a.admin)
	}
	if len(c.Ports) != 2 {
		t.Errorf("container ports %v: want quic and admin only", c.Ports)
	}
	ann := b.deploy.Spec.Template.Annotations
	if ann["prometheus.io/port"] != strconv.Itoa(int(admin.ContainerPort)) || !slices.Contains(adminPaths, ann["prometheus.io/path"]) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v: want port %d, path /metrics", ann, admin.ContainerPort)
	}

	var lb, internal int
	podLabels := labels.Set(b.deploy.Spec.Template.Labels)
	for _, s := range b.svcs {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects %v, not the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		if len(s.Spec.Ports) != 1 {
			t.Fatalf("Service %s: %d ports, want 1", s.Name, len(s.Spec.Ports))
		}
		p := s.Spec.Ports[0]
		switch s.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			lb++
			if p.Protocol != corev1.ProtocolUDP {
				t.Errorf("LoadBalancer Service %s: %s, want UDP", s.Name, p.Protocol)
			}
			resolves(t, c, p.TargetPort, "quic", corev1.ProtocolUDP, "Service "+s.Name)
		case corev1.ServiceTypeClusterIP:
			internal++
			if p.Protocol != corev1.ProtocolTCP {
				t.Errorf("admin Service %s: %s, want TCP", s.Name, p.Protocol)
			}
			resolves(t, c, p.TargetPort, "admin", corev1.ProtocolTCP, "Service "+s.Name)
		default:
			t.Errorf("Service %s of type %q", s.Name, s.Spec.Type)
		}
	}
	if lb != 1 || internal != 1 {
		t.Errorf("%d UDP LoadBalancer and %d admin Services, want one of each", lb, internal)
	}
}

// TestProbes: readiness asks /readyz and liveness /livez, both on the
// admin port, paths that the admin port serves.
func TestProbes(t *testing.T) {
	c := container(t, load(t).deploy)
	for name, pr := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/livez"}} {
		if pr.p == nil || pr.p.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET", name)
			continue
		}
		if !slices.Contains(adminPaths, pr.p.HTTPGet.Path) || pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s probe path %q, want %s (the admin port serves %v)", name, pr.p.HTTPGet.Path, pr.path, adminPaths)
		}
		resolves(t, c, pr.p.HTTPGet.Port, "admin", corev1.ProtocolTCP, name+" probe")
	}
}

// TestGracePeriodCoversDrain: the kubelet's SIGKILL must not come before
// the cloud has waited --drain-delay, finished its requests (bounded by
// --shutdown-timeout) and given the last replies up to 1 s to leave.
func TestGracePeriodCoversDrain(t *testing.T) {
	d := load(t).deploy
	a := parseArgs(t, container(t, d))
	if a.drainDelay <= 0 || a.shutdownTimeout <= 0 {
		t.Fatalf("--drain-delay %v and --shutdown-timeout %v must be set", a.drainDelay, a.shutdownTimeout)
	}
	g := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	need := a.drainDelay + a.shutdownTimeout + time.Second
	if g == nil {
		t.Fatalf("no terminationGracePeriodSeconds; the drain needs %v", need)
	}
	if time.Duration(*g)*time.Second < need {
		t.Fatalf("terminationGracePeriodSeconds %d, the drain needs %v (drain delay %v + shutdown %v + 1 s of linger)", *g, need, a.drainDelay, a.shutdownTimeout)
	}
	// The readiness probe must notice the drain well within the delay.
	r := container(t, d).ReadinessProbe
	if notice := time.Duration(r.PeriodSeconds*r.FailureThreshold) * time.Second; notice >= a.drainDelay {
		t.Errorf("readiness notices a drain after up to %v, not within --drain-delay %v", notice, a.drainDelay)
	}
}

// TestTLSFromSecret: the certificate, key and client CA the flags name are
// files of the Secret volume, mounted read-only.
func TestTLSFromSecret(t *testing.T) {
	d := load(t).deploy
	c := container(t, d)
	a := parseArgs(t, c)
	for _, f := range []string{a.cert, a.key, a.clientCA} {
		found := false
		for _, m := range c.VolumeMounts {
			rel, err := filepath.Rel(m.MountPath, f)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name != m.Name || v.Secret == nil {
					continue
				}
				for _, it := range v.Secret.Items {
					found = found || (it.Path == rel && m.ReadOnly)
				}
			}
		}
		if !found {
			t.Errorf("%s is not an item of a Secret volume mounted read-only", f)
		}
	}
}

// TestSecurityMatchesImage: the pod runs as the image's numeric user, not
// root, on a read-only root file system.
func TestSecurityMatchesImage(t *testing.T) {
	d := load(t).deploy
	user := imageUser(t)
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || ps.RunAsGroup == nil {
		t.Fatalf("pod securityContext %+v: want runAsNonRoot, runAsUser and runAsGroup", ps)
	}
	if got := fmt.Sprintf("%d:%d", *ps.RunAsUser, *ps.RunAsGroup); got != user {
		t.Errorf("pod runs as %s, the image's USER is %s", got, user)
	}
	cs := container(t, d).SecurityContext
	if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v: want a read-only root and no privilege escalation", cs)
	}
}

// imageUser is the USER line of deploy/Containerfile.
func imageUser(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "USER "); ok {
			return strings.TrimSpace(u)
		}
	}
	t.Fatal("deploy/Containerfile has no USER")
	return ""
}

// TestBundlesAndServerID: the bundles the args name are shipped bundles
// (baked into the image under /bundles by `make image`), and --server-id
// comes from the pod IP, which quiclb maps to a server ID.
func TestBundlesAndServerID(t *testing.T) {
	c := container(t, load(t).deploy)
	a := parseArgs(t, c)
	for _, b := range strings.Split(a.bundles, ",") {
		name, ok := strings.CutPrefix(b, "/bundles/")
		if !ok || strings.Contains(name, "/") {
			t.Errorf("--bundle %s: want /bundles/NAME", b)
			continue
		}
		if _, err := os.Stat(filepath.Join("..", "..", "models", "zoo", name, "manifest.json")); err != nil {
			t.Errorf("--bundle %s: not a shipped bundle: %v", b, err)
		}
	}
	ref, ok := strings.CutPrefix(a.serverID, "$(")
	ref, ok2 := strings.CutSuffix(ref, ")")
	if !ok || !ok2 {
		t.Fatalf("--server-id=%s: want $(VAR) of the pod IP", a.serverID)
	}
	var fromIP bool
	for _, e := range c.Env {
		fromIP = fromIP || (e.Name == ref && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP")
	}
	if !fromIP {
		t.Errorf("--server-id=%s: no env %s from status.podIP", a.serverID, ref)
	}
	if n, err := quiclb.ParseServerID("10.244.3.17"); err != nil || n != 3<<8|17 {
		t.Errorf("a pod IP does not map to a server ID: %d, %v", n, err)
	}
}

// TestAutoscaling: the HPA scales this Deployment on a per-pod metric
// that the cloud exports and the adapter's rule exposes under that name;
// the PDB covers the same pods.
func TestAutoscaling(t *testing.T) {
	b := load(t)
	h := b.hpa
	if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != b.deploy.Name {
		t.Errorf("HPA targets %+v, want Deployment %s", ref, b.deploy.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d: want at least 2 so that one can drain", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if b.deploy.Spec.Replicas != nil {
		t.Errorf("the Deployment sets replicas %d, which fights the HPA", *b.deploy.Spec.Replicas)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Type != autoscalingv2.PodsMetricSourceType || h.Spec.Metrics[0].Pods == nil {
		t.Fatalf("HPA metrics %+v: want one Pods metric", h.Spec.Metrics)
	}
	m := h.Spec.Metrics[0].Pods
	if m.Target.Type != autoscalingv2.AverageValueMetricType || m.Target.AverageValue == nil || m.Target.AverageValue.Sign() <= 0 {
		t.Errorf("HPA target %+v: want a positive AverageValue", m.Target)
	}
	name := m.Metric.Name
	if !cloudExports(t, name) {
		t.Errorf("HPA metric %s: the cloud exports no such metric", name)
	}
	rule := findAdapterRule(t, name)
	if !strings.Contains(rule.SeriesQuery, name) {
		t.Errorf("adapter rule for %s queries %q", name, rule.SeriesQuery)
	}
	if rule.Resources.Overrides["pod"].Resource != "pod" || rule.Resources.Overrides["namespace"].Resource != "namespace" {
		t.Errorf("adapter rule %+v: want the pod and namespace labels mapped to their resources", rule.Resources)
	}

	pdb := b.pdb
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(b.deploy.Spec.Template.Labels)) {
		t.Errorf("PDB selector %v does not select the pods (%v)", pdb.Spec.Selector, err)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v, want 1: one replica drains at a time", pdb.Spec.MaxUnavailable)
	}
}

// cloudExports reports whether a cloud server registers a metric name.
func cloudExports(t *testing.T, name string) bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	if _, err := cloud.New(nil, cloud.Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

// adapterRules is prometheus-adapter's configuration file, as far as the
// rule here uses it (decoded strictly).
type adapterRules struct {
	Rules []adapterRule `json:"rules"`
}

type adapterRule struct {
	SeriesQuery string `json:"seriesQuery"`
	Resources   struct {
		Overrides map[string]struct {
			Resource string `json:"resource"`
		} `json:"overrides"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery"`
}

// findAdapterRule decodes prometheus-adapter.yaml (a ConfigMap holding the
// adapter's config.yaml) and returns the rule that exposes name.
func findAdapterRule(t *testing.T, name string) adapterRule {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, "prometheus-adapter.yaml", &cm)
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		t.Fatalf("prometheus-adapter.yaml: %s %s, want a v1 ConfigMap", cm.APIVersion, cm.Kind)
	}
	var cfg adapterRules
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("prometheus-adapter.yaml config.yaml: %v", err)
	}
	for _, r := range cfg.Rules {
		if r.Name.As == name {
			if !strings.Contains(r.MetricsQuery, "<<.Series>>") || !strings.Contains(r.MetricsQuery, "<<.GroupBy>>") {
				t.Errorf("adapter rule for %s: metricsQuery %q must use <<.Series>> and group by <<.GroupBy>>", name, r.MetricsQuery)
			}
			return r
		}
	}
	t.Fatalf("prometheus-adapter.yaml exposes no metric %s", name)
	return adapterRule{}
}

// TestResources: requests and limits are set, limits at least the requests.
func TestResources(t *testing.T) {
	r := container(t, load(t).deploy).Resources
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okr := r.Requests[res]
		lim, okl := r.Limits[res]
		if !okr || !okl || lim.Cmp(req) < 0 {
			t.Errorf("%s: request %v limit %v: want both, limit >= request", res, req.String(), lim.String())
		}
	}
}
