// Command natsd is a NATS server for `make cluster` and local trials:
// nats-server/v2 embedded, so that no nats-server binary is needed. For
// production run the real nats-server (same code, all its options).
package main

import (
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func main() {
	host := flag.String("host", "127.0.0.1", "listen host")
	port := flag.Int("port", 4222, "listen port")
	flag.Parse()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: *host, Port: *port, NoSigs: true})
	if err != nil {
		slog.Error("natsd", "err", err)
		os.Exit(1)
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		slog.Error("natsd: not ready after 10s")
		os.Exit(1)
	}
	slog.Info("natsd listening", "addr", ns.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
}
