package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// The control endpoint: GET /state and POST /faults.

func (c *Cluster) startControl() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", c.serveState)
	mux.HandleFunc("POST /faults", c.serveFaults)
	c.controlLn = ln
	c.control = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.control.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("control endpoint stopped", "err", err)
		}
	}()
	return nil
}

func (c *Cluster) serveState(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(c.State())
}

// serveFaults takes one SPEC as the body; 400 with the valid forms if it
// is not one.
func (c *Cluster) serveFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	spec := strings.TrimSpace(string(body))
	if err := c.Inject(spec); err != nil {
		status := http.StatusBadRequest
		if !errors.Is(err, ErrBadFault) {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok "+spec+"\n")
}
