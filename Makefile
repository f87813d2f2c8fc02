# wsmill: the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
ADDR      ?= :8080
BENCHTIME ?= 1s
COUNT     ?= 6

.PHONY: run cluster build test lint bench bench-smoke fuzz soak cover clean

run: ## start the server on $(ADDR); open http://localhost:8080
	$(GO) run . -addr $(ADDR)

cluster: ## NATS, two instances bridged over it, HAProxy in front: open https://localhost:8443/ in two tabs
	GO=$(GO) sh scripts/cluster.sh

build: ## build ./wsmill
	$(GO) build -o wsmill .

test: lint ## vet, gofmt, every test with the race detector, a smoke run of every benchmark
	sh scripts/ensure-chromium.sh   # the browser test drives Debian's chromium; installed when missing
	sh scripts/ensure-haproxy.sh    # the HAProxy test runs deploy/haproxy.cfg with Debian's haproxy; installed when missing
	$(GO) test -race -shuffle=on -count=1 -timeout 20m ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory bench-smoke

lint: ## go vet (also for a non-Linux target) and gofmt
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench: ## micro-benchmarks, repeated for benchstat: make bench > new.txt
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./server/ ./poller/

bench-smoke: ## every benchmark once, briefly (part of make test)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 100ms -count 1 ./server/ ./poller/

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	for f in FuzzUTF8Step FuzzFrameReader FuzzHandshake; do \
		$(GO) test ./server -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-30s} || exit 1; \
	done

soak: ## minutes of good and hostile clients (SOAK_DURATION, default 3m); fails unless every good client is served, every stalled client let go, and fds/RSS/TCP memory come back
	GO=$(GO) sh scripts/soak.sh

clean:
	rm -f wsmill
