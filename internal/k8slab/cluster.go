package k8slab

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BinEnv names the directory holding etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok and kwok-stages/.
const BinEnv = "ZEROSCALE_K8S_BIN"

// NodeName is the KWOK node every pod runs on.
const NodeName = "k8slab-node"

// Options configure Start.
type Options struct {
	// BinDir holds the binaries; "" means $ZEROSCALE_K8S_BIN.
	BinDir string
	// Images maps container image names to local programs for the
	// Runtime. A pod using another image never starts (its container
	// waits with reason ErrImagePull, as on a real node).
	Images map[string]Image
	// RestartBackoff is the Runtime's first delay before restarting a
	// crashed container; it doubles up to 10 times that. 0 means 1 s
	// (kubelet's is 10 s; tests want crashes to recover fast).
	RestartBackoff time.Duration
	// ImageDir, when set, is a directory holding the images' programs
	// (e.g. a built queue-proxy); Lab.Stop removes it.
	ImageDir string
	// Log, when set, receives the Runtime's and the containers' output
	// lines (e.g. t.Log); nil means they only go to the log files in
	// Cluster.Dir.
	Log func(format string, args ...any)
}

// Cluster is a running control plane with one node. Stop it with Stop.
type Cluster struct {
	// Dir holds the state, the logs (*.log) and the kubeconfig.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// Config is an admin client configuration.
	Config *rest.Config
	// Client is an admin client.
	Client kubernetes.Interface
	// Runtime is the node's container runtime.
	Runtime *Runtime
	// PodCIDR is the node's pod CIDR, a /16 inside 127.0.0.0/8.
	PodCIDR *net.IPNet

	bin     string
	procs   []*proc // started in order, stopped in reverse
	cidrLck *os.File
	cancel  context.CancelFunc
	keep    bool
}

// Start starts a control plane and its node and returns once the node
// is Ready and schedulable. It fails with an error wrapping
// ErrNoBinaries when the binaries are not there.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := haveBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	bin := binDir(opts.BinDir)
	dir, err := os.MkdirTemp("", "k8slab-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	defer func() {
		if err != nil {
			c.keep = true // keep the logs of a failed start
			c.Stop()
			err = fmt.Errorf("%w (logs in %s)", err, dir)
		}
	}()
	if err := c.lockCIDR(); err != nil {
		return nil, err
	}
	token, err := c.credentials()
	if err != nil {
		return nil, err
	}
	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	apiURL, err := c.startAPIServer(ctx, etcdURL, token)
	if err != nil {
		return nil, err
	}
	c.Config = &rest.Config{
		Host: apiURL, BearerToken: token, QPS: 200, Burst: 400,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(apiURL, token); err != nil {
		return nil, err
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	if _, err := c.start("kube-controller-manager", kc, "--leader-elect=false", "--secure-port=0",
		"--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,node-lifecycle-controller",
		"--kube-api-qps=200", "--kube-api-burst=400", "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10"); err != nil {
		return nil, err
	}
	if _, err := c.start("kube-scheduler", kc, "--leader-elect=false", "--secure-port=0",
		"--kube-api-qps=200", "--kube-api-burst=400"); err != nil {
		return nil, err
	}
	stages, err := filepath.Glob(filepath.Join(bin, "kwok-stages", "node-*.yaml"))
	if err != nil || len(stages) == 0 {
		return nil, fmt.Errorf("%w: no kwok-stages/node-*.yaml in %s", ErrNoBinaries, bin)
	}
	// Only the node stages: the Runtime, not KWOK, plays the pods.
	var cfg []byte
	for _, s := range stages {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, err
		}
		cfg = append(append(cfg, b...), "\n---\n"...)
	}
	stagesFile := filepath.Join(c.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesFile, cfg, 0o600); err != nil {
		return nil, err
	}
	if _, err := c.start("kwok", kc, "--config="+stagesFile,
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--node-lease-duration-seconds=40"); err != nil {
		return nil, err
	}
	if err := c.createNode(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.Runtime, err = startRuntime(rctx, c, opts)
	return c, err
}

func binDir(dir string) string {
	if dir == "" {
		return os.Getenv(BinEnv)
	}
	return dir
}

// haveBinaries checks the binaries are in dir ("" = $ZEROSCALE_K8S_BIN).
func haveBinaries(dir string) error {
	bin := binDir(dir)
	if bin == "" {
		return fmt.Errorf("%w: %s is not set (build them with: hack/k8slab/build.sh DIR; export %s=DIR)", ErrNoBinaries, BinEnv, BinEnv)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%w: %s=%s: %w", ErrNoBinaries, BinEnv, bin, err)
		}
	}
	return nil
}

// ErrNoBinaries: the control plane's binaries are not available.
var ErrNoBinaries = errors.New("k8slab: Kubernetes binaries not found")

// Stop stops the Runtime's containers, then the control plane, each by
// its own process, and removes Dir (unless the start failed).
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.Runtime != nil {
		c.Runtime.wait()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	if c.cidrLck != nil {
		_ = os.Remove(c.cidrLck.Name())
		_ = c.cidrLck.Close()
	}
	if !c.keep {
		_ = os.RemoveAll(c.Dir)
	}
}

// KeepDir makes Stop leave Dir (its logs) in place, e.g. after a
// failed test.
func (c *Cluster) KeepDir() { c.keep = true }

// lockCIDR picks a 127.X.0.0/16 no other Cluster on this machine holds,
// holding an exclusive lock on /tmp/zeroscale-k8slab-127.X.lock.
func (c *Cluster) lockCIDR() error {
	for range 64 {
		n, err := rand.Int(rand.Reader, big.NewInt(190))
		if err != nil {
			return err
		}
		x := 64 + int(n.Int64()) // 127.64–127.253: clear of 127.0.0.0/16
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("zeroscale-k8slab-127.%d.lock", x)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		c.cidrLck = f
		_, c.PodCIDR, _ = net.ParseCIDR(fmt.Sprintf("127.%d.0.0/16", x))
		return nil
	}
	return errors.New("k8slab: no free 127.X.0.0/16 pod CIDR (64 tries)")
}

// credentials writes the service-account key and a static admin token.
func (c *Cluster) credentials() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.MkdirAll(filepath.Join(c.Dir, "pki"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "pki", "sa.key"), pemKey, 0o600); err != nil {
		return "", err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	line := token + ",admin,admin-uid,system:masters\n"
	return token, os.WriteFile(filepath.Join(c.Dir, "pki", "tokens.csv"), []byte(line), 0o600)
}

func (c *Cluster) writeKubeconfig(apiURL, token string) error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8slab
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: k8slab
  context: {cluster: k8slab, user: admin}
current-context: k8slab
`, apiURL, token)
	return os.WriteFile(c.Kubeconfig, []byte(kc), 0o600)
}

// freePorts returns n ports that were free on 127.0.0.1 a moment ago.
// Another process may take one before the component binds it; the
// callers retry with new ports when a component exits at start.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

const startTries = 3

func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	var lastErr error
	for try := range startTries {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		p, err := c.start("etcd", "--name=k8slab", "--data-dir="+filepath.Join(c.Dir, fmt.Sprintf("etcd-%d", try)),
			"--listen-client-urls="+client, "--advertise-client-urls="+client,
			"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
			"--initial-cluster=k8slab="+peer, "--unsafe-no-fsync", "--log-level=warn")
		if err != nil {
			return "", err
		}
		lastErr = waitHTTP(ctx, p, http.DefaultClient, client+"/health", "")
		if lastErr == nil {
			return client, nil
		}
		p.stop(time.Second)
	}
	return "", fmt.Errorf("k8slab: etcd did not get healthy: %w", lastErr)
}

func (c *Cluster) startAPIServer(ctx context.Context, etcdURL, token string) (string, error) {
	pki := filepath.Join(c.Dir, "pki")
	var lastErr error
	for range startTries {
		ports, err := freePorts(1)
		if err != nil {
			return "", err
		}
		apiURL := "https://127.0.0.1:" + strconv.Itoa(ports[0])
		p, err := c.start("kube-apiserver",
			"--etcd-servers="+etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]),
			"--cert-dir="+pki, "--token-auth-file="+filepath.Join(pki, "tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file="+filepath.Join(pki, "sa.key"),
			"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
			"--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none",
			// Pods need no service-account token: no real kubelet mounts it.
			"--disable-admission-plugins=ServiceAccount",
			"--profiling=false")
		if err != nil {
			return "", err
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		lastErr = waitHTTP(ctx, p, hc, apiURL+"/readyz", token)
		if lastErr == nil {
			return apiURL, nil
		}
		p.stop(5 * time.Second)
	}
	return "", fmt.Errorf("k8slab: kube-apiserver did not get ready: %w", lastErr)
}

// waitHTTP polls url until it answers 200, p exits, or a minute passes.
func waitHTTP(ctx context.Context, p *proc, hc *http.Client, url, token string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("%s exited at start: %s", p.name, p.tail(2000))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		last = fmt.Errorf("%s: %s", url, resp.Status)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil && last != nil && !strings.Contains(err.Error(), "exited") {
		return fmt.Errorf("%w (last: %w)", err, last)
	}
	return err
}

// createNode registers the KWOK node with the pod CIDR and waits until
// it is Ready and the node-lifecycle controller removed its taints.
func (c *Cluster) createNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
		},
		Spec: corev1.NodeSpec{PodCIDR: c.PodCIDR.String(), PodCIDRs: []string{c.PodCIDR.String()}},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8slab: create node: %w", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil || len(n.Spec.Taints) > 0 {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("k8slab: node %s not Ready and untainted within a minute: %w", NodeName, err)
	}
	return nil
}

// Namespace creates a namespace named after prefix (made DNS-safe, with
// a random suffix) and returns its name and a func that deletes it
// (without waiting).
func (c *Cluster) Namespace(ctx context.Context, prefix string) (string, func(), error) {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	if name == "" {
		name = "t"
	}
	raw := make([]byte, 3)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	name += "-" + hex.EncodeToString(raw)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return "", nil, fmt.Errorf("k8slab: create namespace %s: %w", name, err)
	}
	return name, func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	}, nil
}
