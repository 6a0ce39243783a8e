// Command proxyrig is the baseline for hack/bench/proxy.sh: "upstream ADDR" serves a 1 KiB body
// (a stand-in ComfyUI /view), "bare ADDR UPSTREAM" is a bare httputil.ReverseProxy with 256 idle
// upstream connections.
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: proxyrig upstream ADDR | proxyrig bare ADDR UPSTREAM_URL")
	}
	switch os.Args[1] {
	case "upstream":
		body := []byte(strings.Repeat("x", 1024))
		log.Fatal(http.ListenAndServe(os.Args[2], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		})))
	case "bare":
		u, err := url.Parse(os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256}
		log.Fatal(http.ListenAndServe(os.Args[2], p))
	}
}
