// Package webhookcert gives the operator's admission webhook a serving certificate without
// cert-manager: a CA and a serving certificate kept in a Secret (so every replica serves the
// same one), written to the webhook server's certificate folder (controller-runtime reloads it
// on change), and the CA put into the MutatingWebhookConfiguration's caBundle. It renews both
// well before they expire; the bundle keeps the previous CA during a renewal so the API server
// trusts the old and the new certificate while replicas switch.
package webhookcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Secret keys.
const (
	KeyCA     = "ca.crt"
	KeyPrevCA = "ca-previous.crt"
	KeyCert   = "tls.crt"
	KeyKey    = "tls.key"
)

// bundle is a CA and the serving certificate it signed, PEM encoded.
type bundle struct {
	CA, PrevCA, Cert, Key []byte
}

// renewalReason says why b must be replaced at now for names ("" when it is good): missing,
// unparsable, expiring within renewBefore, or not valid for every DNS name and IP asked for.
func renewalReason(b bundle, names []string, ips []net.IP, now time.Time, renewBefore time.Duration) string {
	if len(b.CA) == 0 || len(b.Cert) == 0 || len(b.Key) == 0 {
		return "no certificate yet"
	}
	cert, err := parseCert(b.Cert)
	if err != nil {
		return "the certificate cannot be read"
	}
	ca, err := parseCert(b.CA)
	if err != nil {
		return "the CA cannot be read"
	}
	if now.Add(renewBefore).After(cert.NotAfter) || now.Add(renewBefore).After(ca.NotAfter) {
		return "the certificate expires " + cert.NotAfter.UTC().Format(time.RFC3339)
	}
	if now.Before(cert.NotBefore) {
		return "the certificate is not valid yet"
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return "the certificate is not signed by the CA"
	}
	for _, n := range names {
		if !slices.Contains(cert.DNSNames, n) {
			return "the certificate does not name " + n
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return "the certificate does not name " + ip.String()
		}
	}
	if _, err := x509.ParseECPrivateKey(pemBlock(b.Key)); err != nil {
		return "the key cannot be read"
	}
	return ""
}

// caBundle is what the webhook configuration trusts: the CA, and the previous one while it is
// still valid.
func (b bundle) caBundle(now time.Time) []byte {
	out := bytes.Clone(b.CA)
	if prev, err := parseCert(b.PrevCA); err == nil && now.Before(prev.NotAfter) && !bytes.Equal(b.PrevCA, b.CA) {
		out = append(out, b.PrevCA...)
	}
	return out
}

// generate makes a new CA and serving certificate valid for validity from now.
func generate(names []string, ips []net.IP, now time.Time, validity time.Duration) (bundle, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mss-login webhook CA"},
		NotBefore:             now.Add(-time.Hour), // clock skew between nodes
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return bundle{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	cn := "mss-login-webhook"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return bundle{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return bundle{}, err
	}
	return bundle{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemBlock(b []byte) []byte {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	return blk.Bytes
}

func parseCert(b []byte) (*x509.Certificate, error) {
	der := pemBlock(b)
	if der == nil {
		return nil, errors.New("no PEM block")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}
