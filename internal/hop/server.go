package hop

import (
	"net/http"
	"time"
)

// NewServer returns an http.Server for h that speaks HTTP/1.1 and h2c
// (prior knowledge), as gRPC clients need, with header read bounded.
func NewServer(addr string, h http.Handler) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}
