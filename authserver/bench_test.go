package authserver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

var kib = []byte(strings.Repeat("x", 1024))

func kibHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(kib)
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}}
}

func get(b *testing.B, c *http.Client, u, auth string) {
	req, _ := http.NewRequest("GET", u, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("status %d", res.StatusCode)
	}
}

// BenchmarkProxy compares an authenticated GET of a 1 KiB body through the auth server (session
// JWT and API token) with a bare httputil.ReverseProxy (256 idle upstream connections) in the
// same run: "parallel" for throughput, "serial" for one connection's latency.
func BenchmarkProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(kibHandler))
	defer upstream.Close()
	up, _ := url.Parse(upstream.URL)
	bare := httputil.NewSingleHostReverseProxy(up)
	bare.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256}
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	db := testenv.Open(b, store.SQLite)
	e := start(b, db, func(c *config.Config) { c.UpstreamURL = upstream.URL })
	owner := e.bootstrap()
	tok := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "bench"}, bearer(owner)).body["token"].(string)

	targets := []struct{ name, url, auth string }{
		{"baseline-bare-proxy", bareSrv.URL + "/view", ""},
		{"session-jwt", e.url + "/view", "Bearer " + owner},
		{"api-token", e.url + "/view", "Bearer " + tok},
	}
	for _, mode := range []string{"parallel", "serial"} {
		for _, tg := range targets {
			b.Run(mode+"/"+tg.name, func(b *testing.B) {
				b.ReportAllocs() // the client and the upstream are in this process too: compare with the baseline
				c := benchClient()
				if mode == "serial" {
					for b.Loop() {
						get(b, c, tg.url, tg.auth)
					}
					return
				}
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get(b, c, tg.url, tg.auth)
					}
				})
			})
		}
	}
}

// BenchmarkWrongPasswordStorm sends 5,000 parallel wrong passwords from one address and reports
// how many password hashes were computed (the first cooldown's 3; target ≤
// blacklist_after_attempts) and the p50/p99 time of the refused ones (target ≤ 1 ms).
func BenchmarkWrongPasswordStorm(b *testing.B) {
	for b.Loop() {
		e := start(b, testenv.Open(b, store.SQLite), nil)
		e.bootstrap()
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			checked int
			refused []time.Duration
		)
		sem := make(chan struct{}, 256)
		for range 5000 {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				t0 := time.Now()
				r := e.do("POST", "/login", map[string]string{"username": "owner", "password": "nope-1!"}, from("198.51.100.99"))
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				if r.code == 401 {
					checked++
				} else {
					refused = append(refused, d)
				}
			}()
		}
		wg.Wait()
		sort.Slice(refused, func(i, j int) bool { return refused[i] < refused[j] })
		// One refused request at a time (cooling down): the cost of a refusal without the
		// storm's queueing.
		var serial []time.Duration
		for range 200 {
			t0 := time.Now()
			if r := e.do("POST", "/login", map[string]string{"username": "owner", "password": "nope-1!"}, from("198.51.100.99")); r.code != 403 {
				b.Fatalf("after the storm: %d", r.code)
			}
			serial = append(serial, time.Since(t0))
		}
		sort.Slice(serial, func(i, j int) bool { return serial[i] < serial[j] })
		b.ReportMetric(float64(serial[len(serial)/2].Microseconds()), "refused-serial-p50-µs")
		b.ReportMetric(float64(checked), "hashes")
		b.ReportMetric(float64(refused[len(refused)/2].Microseconds()), "refused-p50-µs")
		b.ReportMetric(float64(refused[len(refused)*99/100].Microseconds()), "refused-p99-µs")
	}
}

// BenchmarkWebSocketRevocation opens 1,000 sockets through the proxy for one user, disables
// the user, and reports how long until every socket is closed (target ≤ 1 s).
func BenchmarkWebSocketRevocation(b *testing.B) {
	for b.Loop() {
		db := testenv.Open(b, store.SQLite)
		e := start(b, db, nil)
		owner := e.bootstrap()
		e.do("POST", "/mss-login/api/users", map[string]string{"username": "wsuser", "password": "Ws-pass-1!", "role": "user"}, bearer(owner))
		tok := e.login("wsuser", "Ws-pass-1!", "192.0.2.50")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		conns := make([]*websocket.Conn, 0, 1000)
		for range 1000 {
			c, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?token="+tok, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.Read(ctx); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}
		t0 := time.Now()
		if r := e.do("PUT", "/mss-login/api/users/wsuser", map[string]string{"disabled": "true"}, bearer(owner)); r.code != 200 {
			b.Fatal(r.raw)
		}
		wg.Wait()
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms-to-close-1000")
		cancel()
	}
}

// BenchmarkWebSocketStream relays 10,000 progress messages from ComfyUI's /ws to a signed-in
// user's socket, through the auth server (client id namespaced, identity re-checked by the
// sweep) and through a bare httputil.ReverseProxy in the same run. The process's CPU time per
// message is reported; both relays share the upstream and the client, so the ratio of the
// two cpu-ns/msg figures understates the relay's own share only by that common part.
func BenchmarkWebSocketStream(b *testing.B) {
	const messages = 10000
	msg := []byte(`{"type": "progress", "data": {"value": 17, "max": 20, "prompt_id": "0c6a1a4e-2b0f-4d8e-9d55-6f1f0e8f3a21", "node": "3"}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type": "status", "data": {"sid": "`+r.URL.Query().Get("clientId")+`"}}`))
		for range messages {
			if c.Write(ctx, websocket.MessageText, msg) != nil {
				return
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer up.Close()
	db := testenv.Open(b, store.SQLite)
	e := start(b, db, func(c *config.Config) { c.UpstreamURL = up.URL })
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "streamer", "password": "Stream-pass-1!", "role": "user"}, bearer(owner))
	tok := e.login("streamer", "Stream-pass-1!", "192.0.2.60")
	target, _ := url.Parse(up.URL)
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer bare.Close()
	for _, c := range []struct{ name, url string }{
		{"baseline-bare-proxy", strings.Replace(bare.URL, "http", "ws", 1) + "/ws?clientId=tab"},
		{"auth-server", strings.Replace(e.url, "http", "ws", 1) + "/ws?clientId=tab&token=" + tok},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				conn, _, err := websocket.Dial(ctx, c.url, nil)
				if err != nil {
					b.Fatal(err)
				}
				conn.SetReadLimit(1 << 20)
				t0 := processCPU()
				n := 0
				for {
					if _, _, err := conn.Read(ctx); err != nil {
						break
					}
					n++
				}
				cpu += processCPU() - t0
				cancel()
				if n != messages+1 {
					b.Fatalf("%d of %d messages arrived", n, messages+1)
				}
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*messages), "cpu-ns/msg")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
