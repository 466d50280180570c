package homeserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// probe asks Synapse's GET /health once. It returns how long the answer took and nil for
// "200 OK".
func probe(ctx context.Context, client *http.Client, url string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	begin := time.Now()
	resp, err := client.Do(req)
	took := time.Since(begin)
	if err != nil {
		return took, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return took, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return took, nil
}
