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
)

var staticUsers = []staticUser{
	{name: userAdmin, groups: []string{"system:masters"}},
	{name: userControllerManager},
	{name: userScheduler},
	{name: userKWOK, groups: []string{"system:masters"}},
}

// writePKI writes the CA, the apiserver serving cert (valid for serviceIP,
// advertiseIP and loopback), the service-account keys and a token file into
// dir. It returns the files and a random token per static user.
func writePKI(dir string, serviceIP, advertiseIP net.IP) (*pki, map[string]string, error) {
	p := &pki{
		caCert:      filepath.Join(dir, "ca.crt"),
		caKey:       filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servKey:     filepath.Join(dir, "apiserver.key"),
		kubeletCert: filepath.Join(dir, "kubelet.crt"),
		kubeletKey:  filepath.Join(dir, "kubelet.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
		tokenFile:   filepath.Join(dir, "tokens.csv"),
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

	servPEM, servKeyPEM, err := issueServingCert(caCert, caKey, 2, "kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP, advertiseIP})
	if err != nil {
		return nil, nil, err
	}
	// KWOK serves the kubelet API of every fake node on loopback; the API
	// server dials it for pods/log and verifies it against the cluster CA.
	kubeletPEM, kubeletKeyPEM, err := issueServingCert(caCert, caKey, 3, "kwok-kubelet", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
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

// issueServingCert makes a key and a server certificate for dnsNames and ips,
// signed by the CA, both PEM-encoded.
func issueServingCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, name string, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
