package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki is the set of files the components are started with. Everything is
// generated in Go so a fresh machine needs no openssl.
type pki struct {
	caCert, caKey           string // cluster CA: signs the serving cert and, in KCM, CSRs
	servingCert, servKey    string // kube-apiserver's serving cert
	kubeletCert, kubeletKey string // KWOK's kubelet serving cert (loopback)
	nodeCert, nodeKey       string // the real node's kubelet serving cert (RealNodeIP)
	kubeletClientCert       string // kube-apiserver's client cert for kubelets (pods/log of the real node)
	kubeletClientKey        string
	saKey, saPub            string // service-account token signing key pair
	tokenFile               string // --token-auth-file
	caPEM                   []byte
}

// A staticUser is one line of the apiserver's static token file.
type staticUser struct {
	name   string
	groups []string
}

// Users of the static token file. KWOK plays every kubelet of the fake nodes,
// which the Node authorizer does not cover, so it is a cluster admin as in
// kwokctl.
const (
	userAdmin             = "admin"
	userControllerManager = "system:kube-controller-manager"
	userScheduler         = "system:kube-scheduler"
	userKWOK              = "kwok"
	// userRealNode is the real node's kubelet: the Node authorizer and
	// NodeRestriction hold it to its own node, its pods and their secrets.
	userRealNode = "system:node:" + RealNodeName
)

var staticUsers = []staticUser{
	{name: userAdmin, groups: []string{"system:masters"}},
	{name: userControllerManager},
	{name: userScheduler},
	{name: userKWOK, groups: []string{"system:masters"}},
	{name: userRealNode, groups: []string{"system:nodes"}},
}

// writePKI writes the CA, the apiserver serving cert (valid for serviceIP,
// advertiseIP and loopback), the service-account keys and a token file into
// dir. It returns the files and a random token per static user.
func writePKI(dir string, serviceIP, advertiseIP net.IP) (*pki, map[string]string, error) {
	p := &pki{
		caCert:            filepath.Join(dir, "ca.crt"),
		caKey:             filepath.Join(dir, "ca.key"),
		servingCert:       filepath.Join(dir, "apiserver.crt"),
		servKey:           filepath.Join(dir, "apiserver.key"),
		kubeletCert:       filepath.Join(dir, "kubelet.crt"),
		kubeletKey:        filepath.Join(dir, "kubelet.key"),
		nodeCert:          filepath.Join(dir, "real-node.crt"),
		nodeKey:           filepath.Join(dir, "real-node.key"),
		kubeletClientCert: filepath.Join(dir, "apiserver-kubelet-client.crt"),
		kubeletClientKey:  filepath.Join(dir, "apiserver-kubelet-client.key"),
		saKey:             filepath.Join(dir, "sa.key"),
		saPub:             filepath.Join(dir, "sa.pub"),
		tokenFile:         filepath.Join(dir, "tokens.csv"),
	}
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "teleop-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA cert: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA cert: %w", err)
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	servPEM, servKeyPEM, err := issueCert(caCert, caKey, 2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP, advertiseIP})
	if err != nil {
		return nil, nil, err
	}
	// KWOK serves the kubelet API of every fake node on loopback; the API
	// server dials it for pods/log and verifies it against the cluster CA.
	kubeletPEM, kubeletKeyPEM, err := issueCert(caCert, caKey, 3, pkix.Name{CommonName: "kwok-kubelet"}, x509.ExtKeyUsageServerAuth, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}

	// The real node's kubelet serves on RealNodeIP; kube-apiserver dials it
	// with a client cert the kubelet checks against the same CA.
	nodePEM, nodeKeyPEM, err := issueCert(caCert, caKey, 4, pkix.Name{CommonName: RealNodeName}, x509.ExtKeyUsageServerAuth,
		[]string{RealNodeName}, []net.IP{net.ParseIP(RealNodeIP)})
	if err != nil {
		return nil, nil, err
	}
	clientPEM, clientKeyPEM, err := issueCert(caCert, caKey, 5, pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, nil, err
	}

	// Service-account tokens are signed with RSA, the one key type every
	// consumer of the issuer's JWKS accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal service-account public key: %w", err)
	}

	tokens := make(map[string]string, len(staticUsers))
	var tokenCSV strings.Builder
	for i, u := range staticUsers {
		token, err := randomToken()
		if err != nil {
			return nil, nil, err
		}
		tokens[u.name] = token
		fmt.Fprintf(&tokenCSV, "%s,%s,uid-%d,%q\n", token, u.name, i, strings.Join(u.groups, ","))
	}

	files := []struct {
		path string
		data []byte
	}{
		{p.caCert, p.caPEM},
		{p.caKey, ecKeyPEM(caKey)},
		{p.servingCert, servPEM},
		{p.servKey, servKeyPEM},
		{p.kubeletCert, kubeletPEM},
		{p.kubeletKey, kubeletKeyPEM},
		{p.nodeCert, nodePEM},
		{p.nodeKey, nodeKeyPEM},
		{p.kubeletClientCert, clientPEM},
		{p.kubeletClientKey, clientKeyPEM},
		{p.saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})},
		{p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub})},
		{p.tokenFile, []byte(tokenCSV.String())},
	}
	for _, f := range files {
		if f.data == nil {
			return nil, nil, fmt.Errorf("encode %s", f.path)
		}
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return p, tokens, nil
}

// issueCert makes a key and a certificate for subject with one extended key
// usage, signed by the CA, both PEM-encoded.
func issueCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, subject pkix.Name, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	name := subject.CommonName
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s cert: %w", name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ecKeyPEM(key), nil
}

func ecKeyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil // reported by the caller as an encoding failure
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
