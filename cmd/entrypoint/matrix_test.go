package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// matrixClient speaks just enough of the Matrix client and admin APIs to prove a homeserver
// serves: register a user with the shared secret, log in, list versions.
type matrixClient struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT
	http *http.Client
}

func newMatrixClient(t *testing.T, port int) *matrixClient {
	return &matrixClient{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), http: &http.Client{Timeout: 30 * time.Second}}
}

func (c *matrixClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// register creates a user through the shared-secret admin API (what `register_new_matrix_user`
// does): a nonce, then an HMAC-SHA1 over nonce, user, password and admin flag.
func (c *matrixClient) register(secret, user, password string) {
	c.t.Helper()
	code, out := c.do("GET", "/_synapse/admin/v1/register", nil)
	if code != 200 {
		c.t.Fatalf("register nonce: %d %v", code, out)
	}
	nonce := out["nonce"].(string)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(nonce + "\x00" + user + "\x00" + password + "\x00notadmin"))
	code, out = c.do("POST", "/_synapse/admin/v1/register", map[string]any{
		"nonce": nonce, "username": user, "password": password, "admin": false, "mac": hex.EncodeToString(mac.Sum(nil)),
	})
	if code != 200 {
		c.t.Fatalf("register %s: %d %v", user, code, out)
	}
}

// login logs in with a password and returns the access token.
func (c *matrixClient) login(user, password string) string {
	c.t.Helper()
	code, out := c.do("POST", "/_matrix/client/v3/login", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	})
	tok, _ := out["access_token"].(string)
	if code != 200 || tok == "" {
		c.t.Fatalf("login %s: %d %v", user, code, out)
	}
	return tok
}

// versions is GET /_matrix/client/versions, which needs no authentication.
func (c *matrixClient) versions() int {
	c.t.Helper()
	code, _ := c.do("GET", "/_matrix/client/versions", nil)
	return code
}
