package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchPKI is a throwaway CA with a certificate for the publisher
// (localhost, 127.0.0.1) and one per subscriber (identity bench-N, the
// --id the job gives it), as PEM files, for the job over tls://.
type benchPKI struct {
	ca               string
	pubCert, pubKey  string
	subCert, subKeys []string
}

// writeBenchPKI writes the files into dir.
func writeBenchPKI(dir string, subs int) (benchPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchPKI{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syncpub bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return benchPKI{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return benchPKI{}, err
	}
	pki := benchPKI{ca: filepath.Join(dir, "ca.crt")}
	if err := writePEM(pki.ca, "CERTIFICATE", caDER); err != nil {
		return benchPKI{}, err
	}
	issue := func(name string, serial int64, tmpl *x509.Certificate) (certFile, keyFile string, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", "", err
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return "", "", err
		}
		return certFile, keyFile, writePEM(keyFile, "PRIVATE KEY", keyDER)
	}
	if pki.pubCert, pki.pubKey, err = issue("publisher", 2, &x509.Certificate{
		Subject: pkix.Name{CommonName: "publisher"}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return benchPKI{}, err
	}
	for i := 0; i < subs; i++ {
		c, k, err := issue(fmt.Sprint("bench-", i), int64(3+i), &x509.Certificate{
			Subject: pkix.Name{CommonName: fmt.Sprint("bench-", i)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return benchPKI{}, err
		}
		pki.subCert, pki.subKeys = append(pki.subCert, c), append(pki.subKeys, k)
	}
	return pki, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// overTLS turns a tcp:// endpoint into the tls:// one on the same address.
func overTLS(ep string) string { return strings.Replace(ep, "tcp://", "tls://", 1) }
