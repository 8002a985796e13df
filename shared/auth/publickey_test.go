package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docuvault/docuvault/shared/auth"
)

// signers are private keys of every supported type and their algorithm.
type signer struct {
	method jwt.SigningMethod
	key    crypto.Signer
}

func newSigners(t *testing.T) []signer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []signer{{jwt.SigningMethodRS256, rsaKey}, {jwt.SigningMethodES256, ecKey}, {jwt.SigningMethodEdDSA, edKey}}
}

// pemOf encodes public keys as an identity provider publishes them.
func pemOf(t *testing.T, keys ...crypto.PublicKey) []byte {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der}); err != nil {
			t.Fatal(err)
		}
	}
	return []byte(b.String())
}

func verifierOf(t *testing.T, secret []byte, pemData []byte) *auth.Verifier {
	t.Helper()
	keys, err := auth.ParsePublicKeys(pemData)
	if err != nil {
		t.Fatalf("ParsePublicKeys: %v", err)
	}
	return newVerifier(t, auth.Config{Secret: secret, PublicKeys: keys})
}

func TestPublicKeysVerifyTheirOwnAlgorithmOnly(t *testing.T) {
	t.Parallel()
	ours, theirs := newSigners(t), newSigners(t)
	var public []crypto.PublicKey
	for _, s := range ours {
		public = append(public, s.key.Public())
	}
	pemData := pemOf(t, public...)
	keysOnly := verifierOf(t, nil, pemData)
	both := verifierOf(t, testSecret, pemData)

	for i, s := range ours {
		t.Run(s.method.Alg(), func(t *testing.T) {
			for _, v := range []*auth.Verifier{keysOnly, both} {
				p, err := v.Verify(sign(t, s.method, s.key, validClaims()))
				if err != nil || p.UserID != testUserID || p.Role != auth.RoleUser {
					t.Fatalf("a token signed with our %s key: %+v, %v", s.method.Alg(), p, err)
				}
				if _, err := v.Verify(sign(t, s.method, theirs[i].key, validClaims())); !errors.Is(err, auth.ErrUnauthorized) {
					t.Fatalf("a %s token signed with a key not in the file: %v, want unauthorized", s.method.Alg(), err)
				}
				if _, err := v.Verify(sign(t, s.method, s.key, withClaims(func(c jwt.MapClaims) { delete(c, "exp") }))); !errors.Is(err, auth.ErrUnauthorized) {
					t.Fatalf("a %s token without exp: %v, want unauthorized", s.method.Alg(), err)
				}
			}
		})
	}

	// The classic confusion: an HS256 token keyed with the public key's
	// bytes, which a verifier handing out "the key" would check as HMAC.
	for _, key := range [][]byte{pemData, pemOf(t, ours[1].key.Public())} {
		forged := sign(t, jwt.SigningMethodHS256, key, validClaims())
		for _, v := range []*auth.Verifier{keysOnly, both} {
			if _, err := v.Verify(forged); !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("HS256 keyed with the public key: %v, want unauthorized", err)
			}
		}
	}
	// Without a secret, HS256 is not accepted at all.
	if _, err := keysOnly.Verify(sign(t, jwt.SigningMethodHS256, testSecret, validClaims())); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("HS256 with no secret configured: %v, want unauthorized", err)
	}
	if _, err := both.Verify(sign(t, jwt.SigningMethodHS256, testSecret, validClaims())); err != nil {
		t.Fatalf("HS256 with the secret beside public keys: %v", err)
	}
	// An algorithm with no key of its type: an RS256 token against a file of
	// an Ed25519 key only; and algorithms never accepted.
	edOnly := verifierOf(t, nil, pemOf(t, ours[2].key.Public()))
	if _, err := edOnly.Verify(sign(t, ours[0].method, ours[0].key, validClaims())); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("RS256 against an Ed25519 key only: %v, want unauthorized", err)
	}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodPS256, jwt.SigningMethodRS512} {
		if _, err := keysOnly.Verify(sign(t, m, ours[0].key, validClaims())); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("%s with our RSA key: %v, want unauthorized", m.Alg(), err)
		}
	}
}

func TestPublicKeyFileWithTwoKeysRollsOver(t *testing.T) {
	t.Parallel()
	old, next := newSigners(t)[2], newSigners(t)[2]
	v := verifierOf(t, nil, pemOf(t, old.key.Public(), next.key.Public()))
	for _, s := range []signer{old, next} {
		if _, err := v.Verify(sign(t, s.method, s.key, validClaims())); err != nil {
			t.Fatalf("a token of one of the file's two keys: %v", err)
		}
	}
}

func TestParsePublicKeysRefusesWhatIsNotAUsablePublicKey(t *testing.T) {
	t.Parallel()
	s := newSigners(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	private, err := x509.MarshalPKCS8PrivateKey(s[2].key)
	if err != nil {
		t.Fatal(err)
	}
	good := pemOf(t, s[0].key.Public())
	for name, data := range map[string][]byte{
		"empty":               nil,
		"not PEM":             []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"),
		"a private key":       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: private}),
		"a 1024-bit RSA key":  pemOf(t, weak.Public()),
		"a P-384 key":         pemOf(t, p384.Public()),
		"garbage in a block":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}),
		"text after the keys": append(append([]byte(nil), good...), "trailing words\n"...),
	} {
		if keys, err := auth.ParsePublicKeys(data); err == nil {
			t.Errorf("%s: ParsePublicKeys = %d keys, want an error", name, len(keys))
		}
	}
	// PKCS #1 "RSA PUBLIC KEY" blocks are read too.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(s[0].key.Public().(*rsa.PublicKey))})
	v := verifierOf(t, nil, pkcs1)
	if _, err := v.Verify(sign(t, s[0].method, s[0].key, validClaims())); err != nil {
		t.Fatalf("an RS256 token against a PKCS #1 key: %v", err)
	}
	if _, err := auth.NewVerifier(auth.Config{}); err == nil {
		t.Fatal("NewVerifier with neither a secret nor a key: want an error")
	}
	if _, err := auth.NewVerifier(auth.Config{PublicKeys: []crypto.PublicKey{weak.Public()}}); err == nil {
		t.Fatal("NewVerifier with a 1024-bit RSA key: want an error")
	}
}
