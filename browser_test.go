package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsmill/wsmill/server"
)

// chromiumPath is Debian's Chromium, which scripts/ensure-chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserDemoPage drives the demo page in a real headless Chromium against
// the real wiring (server + newMux): connect, greeting, time pushes, an echo
// with its round trip, the connection count from /stats, the chart, then a
// server shutdown (Close 1001), the page's reconnect message, and a reconnect
// to a new server on the same port.
//
// WSMILL_SCREENSHOT=path also saves a screenshot of the page, taken while it
// is open, after a few echoes and pushes, for the docs:
//
//	WSMILL_SCREENSHOT=docs/screenshot.png go test -run Browser .
//
// WSMILL_SCREENSHOT_SIZE=WxH[@scale] sets its viewport (default 1000x900@1),
// e.g. 390x844@3 for a phone.
func TestBrowserDemoPage(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed for the browser test and %s is not usable (%v): "+
			"run scripts/ensure-chromium.sh (as root, or with sudo) to install Debian's chromium", chromiumPath, err)
	}
	shotPath := os.Getenv("WSMILL_SCREENSHOT")
	shotW, shotH, shotScale, err := parseShotSize(os.Getenv("WSMILL_SCREENSHOT_SIZE"))
	if err != nil {
		t.Fatalf("WSMILL_SCREENSHOT_SIZE: %v", err)
	}

	// Every wait below is bounded by its own timeout, and all of them by this.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	start := time.Now()
	mark := func(what string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), what) }

	srv1 := startBrowserServer(t, "127.0.0.1:0")
	addr := srv1.addr
	b := startBrowser(t, ctx)
	mark("browser started")

	// Go through the steps at 1000x900, the size of the docs screenshot.
	b.do("set viewport", 10*time.Second, chromedp.EmulateViewport(1000, 900))
	b.do("load the page", 15*time.Second, chromedp.Navigate("http://"+addr+"/"))
	mark("page loaded")

	// Connected and greeted.
	st := b.wait("#state open and the greeting", 15*time.Second, func(s pageState) bool {
		return s.State == "open" && s.Greeting == "Hi Client!"
	})
	if st.SendDisabled {
		t.Errorf("#send is disabled while open")
	}
	mark("open, greeted")

	// The clock shows a pushed time, and a later push changes it (the layout
	// has whole seconds, so that takes up to a second and a push interval).
	st = b.wait("#clock to show a pushed time", 10*time.Second, func(s pageState) bool {
		return isServerTime(s.Clock)
	})
	first := st.Clock
	st = b.wait("#clock to change after "+first, 10*time.Second, func(s pageState) bool {
		return isServerTime(s.Clock) && s.Clock != first
	})
	if !strings.Contains(st.Since, "since last push") {
		t.Errorf("#since = %q; want it to say the time since the last push", st.Since)
	}
	mark("clock " + first + " -> " + st.Clock)

	// Echoes: each one is the first li, with its round trip.
	echoes := 3
	if shotPath != "" {
		echoes = 8 // spread over a few seconds: more to see on the chart
	}
	for i := 1; i <= echoes; i++ {
		msg := fmt.Sprintf("hello wsmill %d", i)
		b.do("send "+msg, 10*time.Second,
			chromedp.SendKeys(chromedp.ID("msg"), msg),
			chromedp.Click(chromedp.ID("send")),
		)
		st = b.wait("the echo of "+msg, 10*time.Second, func(s pageState) bool {
			return s.FirstEcho == msg && s.Echoes == i
		})
		if !rttText.MatchString(st.FirstRTT) {
			t.Errorf("echo %q shows round trip %q; want like \"0.8 ms\"", msg, st.FirstRTT)
		}
		if shotPath != "" {
			time.Sleep(2 * time.Second)
		}
	}
	mark("echoes seen, last RTT " + st.FirstRTT)

	// The open connection count from /stats (polled every 2 s), and the chart.
	st = b.wait("#conns to show a count >= 1", 10*time.Second, func(s pageState) bool {
		n, err := strconv.Atoi(s.Conns)
		return err == nil && n >= 1 && s.ConnPoints >= 1 && s.RTTPoints >= echoes
	})
	if st.ChartW <= 0 || st.ChartH <= 0 || st.ChartW < int(float64(st.ChartCSSW)*st.DPR)-1 {
		t.Errorf("#chart backing store %dx%d for %dx%d CSS px at devicePixelRatio %v; want it sized for the ratio",
			st.ChartW, st.ChartH, st.ChartCSSW, st.ChartCSSH, st.DPR)
	}
	mark("conns " + st.Conns)

	// A screenshot is a non-empty PNG.
	full := b.screenshot("full-page screenshot", chromedp.FullScreenshot(100))
	checkPNG(t, full)
	if err := os.WriteFile(filepath.Join(t.TempDir(), "page.png"), full, 0o644); err != nil {
		t.Fatal(err)
	}
	if shotPath != "" {
		b.do("set the screenshot viewport", 10*time.Second,
			chromedp.EmulateViewport(shotW, shotH, chromedp.EmulateScale(shotScale)))
		b.wait("the chart to fit the new viewport", 10*time.Second, func(s pageState) bool {
			return s.ChartW == int(float64(s.ChartCSSW)*s.DPR+0.5) && s.DPR == shotScale
		})
		time.Sleep(300 * time.Millisecond) // one more chart tick
		shot := b.screenshot("screenshot for "+shotPath, chromedp.CaptureScreenshot())
		checkPNG(t, shot)
		if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%dx%d@%v)", shotPath, shotW, shotH, shotScale)
		b.do("restore the viewport", 10*time.Second, chromedp.EmulateViewport(1000, 900))
	}
	mark("screenshots taken")

	// Shutdown sends Close 1001: the page says closed and when it retries.
	srv1.stop(t)
	mark("server 1 shut down")
	st = b.wait("#state closed with a reconnect message", 10*time.Second, func(s pageState) bool {
		return s.State == "closed" && strings.Contains(s.Reconnect, "reconnect")
	})
	t.Logf("after shutdown: #state %q, #reconnect %q", st.StateText, st.Reconnect)
	mark("closed")

	// A new server on the same port: the page reconnects and is greeted
	// again (the test blanks the old greeting first, to see the new one).
	b.do("blank the greeting", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('greeting').textContent = ''`))
	srv2 := startBrowserServer(t, addr)
	mark("server 2 listening on " + addr)
	st = b.wait("the page to reconnect to the new server", 20*time.Second, func(s pageState) bool {
		return s.State == "open" && s.Greeting == "Hi Client!"
	})
	if st.Reconnect != "" {
		t.Errorf("#reconnect = %q once open again; want it empty", st.Reconnect)
	}
	if up := srv2.srv.Stats().Upgraded; up < 1 {
		t.Errorf("new server upgraded %d connections; want the page's", up)
	}
	mark("reconnected")
	before := st.Clock
	b.wait("#clock to change on the new server", 10*time.Second, func(s pageState) bool {
		return isServerTime(s.Clock) && s.Clock != before
	})
	mark("pushes again")

	// Another site's page (another origin: http://localhost:<other port>)
	// opening a WebSocket to the server is refused by default with 403:
	// the browser would send the user's cookies with it.
	rejected := srv2.srv.Stats().RejectedBy[server.RejectOrigin]
	other := startCrossOriginPage(t, "ws://"+addr+"/ws")
	b.do("load a page of another origin", 15*time.Second, chromedp.Navigate(other))
	outcome := b.waitTitle("the cross-origin WebSocket to fail", 10*time.Second)
	if outcome != "error" {
		t.Errorf("cross-origin page's WebSocket: %q; want error (refused)", outcome)
	}
	if got := srv2.srv.Stats().RejectedBy[server.RejectOrigin] - rejected; got != 1 {
		t.Errorf("origin rejections during the cross-origin page: %d; want 1", got)
	}
	mark("cross-origin page refused")
	b.checkConsole()
}

// startCrossOriginPage serves, on a port of its own and under the name
// localhost (so another origin than the server's), a page that opens a
// WebSocket to wsURL and sets its title to "open" or "error".
func startCrossOriginPage(t *testing.T, wsURL string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><title>pending</title><script>
const ws = new WebSocket(` + strconv.Quote(wsURL) + `);
ws.onopen = () => { document.title = "open"; };
ws.onerror = () => { document.title = "error"; };
</script>`
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://localhost:" + port + "/"
}

// waitTitle waits until the page's title is no longer "pending" and
// returns it.
func (b *browser) waitTitle(what string, d time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		title, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.title`))
		if err == nil && title != "pending" && title != "" {
			return title
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: not within %v (title %q, err %v)", what, d, title, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var rttText = regexp.MustCompile(`^\d+(\.\d+)? ms$`)

func isServerTime(s string) bool {
	_, err := time.Parse(TimeLayout, s)
	return err == nil
}

// parseShotSize parses WxH or WxH@scale; empty means 1000x900@1.
func parseShotSize(s string) (w, h int64, scale float64, err error) {
	if s == "" {
		return 1000, 900, 1, nil
	}
	size, sc, hasScale := strings.Cut(s, "@")
	ws, hs, ok := strings.Cut(size, "x")
	scale = 1
	if hasScale {
		scale, err = strconv.ParseFloat(sc, 64)
	}
	if err == nil && ok {
		if w, err = strconv.ParseInt(ws, 10, 32); err == nil {
			h, err = strconv.ParseInt(hs, 10, 32)
		}
	}
	if err != nil || !ok || w <= 0 || h <= 0 || scale <= 0 {
		return 0, 0, 0, fmt.Errorf("%q: want WxH or WxH@scale, like 390x844@3", s)
	}
	return w, h, scale, nil
}

func checkPNG(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot (%d bytes) is not a PNG: %v", len(b), err)
	}
	if r := img.Bounds(); r.Dx() <= 0 || r.Dy() <= 0 {
		t.Fatalf("screenshot is %dx%d; want a non-empty image", r.Dx(), r.Dy())
	}
}

// browserServer is one run of the real wiring on a loopback port.
type browserServer struct {
	srv    *server.Server
	addr   string
	served chan error
	once   sync.Once
}

// startBrowserServer serves newMux and /ws on addr ("127.0.0.1:0" for any
// port), and shuts down at the end of the test if the test has not. Listening
// is retried for a while, because addr may be the port of a server that was
// just shut down.
func startBrowserServer(t *testing.T, addr string) *browserServer {
	t.Helper()
	return startBrowserServerWith(t, addr, nil)
}

// startBrowserServerWith is startBrowserServer with the config changed by
// edit first (when not nil).
func startBrowserServerWith(t *testing.T, addr string, edit func(*server.Config)) *browserServer {
	t.Helper()
	var srv *server.Server
	cfg := server.Config{
		Handler:      newMux(func() *server.Server { return srv }),
		PushInterval: 300 * time.Millisecond,
		OnError:      func(err error) { t.Logf("server: %v", err) },
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(withDemo(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := &browserServer{srv: srv, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { b.served <- srv.Serve(ln) }()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// stop shuts the server down (once): Close 1001 to every client, and waits
// for them to answer.
func (b *browserServer) stop(t *testing.T) {
	t.Helper()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-b.served:
			if !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
}

// browser is a headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's; no deadline of its own but the test's

	stopConsole context.CancelFunc
	consoleDone chan struct{}
	consoleMu   sync.Mutex
	console     []chromedp.ConsoleMessage
}

// startBrowser starts Debian's Chromium with a fresh profile. It is closed,
// and its profile removed, when the test ends.
func startBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	// The profile is inside t.TempDir, and removed before it, with retries:
	// Chromium's helper processes may still be writing in it for a moment
	// after the browser has exited.
	profile := filepath.Join(t.TempDir(), "profile")
	t.Cleanup(func() {
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err = os.RemoveAll(profile); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Errorf("removing the browser profile: %v", err)
		}
	})
	out := new(lockedBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output (last 4 KiB):\n%s", out.tail(4<<10))
		}
	})

	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Timers and rendering at full speed even if Chromium thinks the
		// page is in the background: the page polls and redraws on timers.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1000, 900),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(out),
	)
	t.Cleanup(allocCancel) // after the tab's cancel: waits for the process
	tabCtx, tabCancel := chromedp.NewContext(allocCtx)
	t.Cleanup(tabCancel)

	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("starting %s: %v (run scripts/ensure-chromium.sh if it is missing or broken)", chromiumPath, err)
	}
	b := &browser{t: t, ctx: tabCtx, consoleDone: make(chan struct{})}

	// Collect the page's console: its messages and uncaught exceptions.
	consoleCtx, stopConsole := context.WithCancel(tabCtx)
	b.stopConsole = stopConsole
	messages := chromedp.Console(consoleCtx) // subscribed from here on
	go func() {
		defer close(b.consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.consoleMu.Lock()
			b.console = append(b.console, m)
			b.consoleMu.Unlock()
		}
	}()
	t.Cleanup(func() { stopConsole(); <-b.consoleDone })
	return b
}

// checkConsole fails the test for each uncaught exception on the page, and
// logs the rest of the console when the test has failed. (Errors such as
// refused connections while the server is down are expected.)
func (b *browser) checkConsole() {
	b.t.Helper()
	b.consoleMu.Lock()
	defer b.consoleMu.Unlock()
	for _, m := range b.console {
		if m.IsException() {
			b.t.Errorf("uncaught exception on the page: %s (%s:%d)", m.Text, m.URL, m.Line+1)
		}
	}
	if b.t.Failed() {
		for _, m := range b.console {
			b.t.Logf("console %s: %s", m.Type, m.Text)
		}
	}
}

// do runs actions in the tab, within d.
func (b *browser) do(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) screenshot(what string, a chromedp.Action[[]byte]) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return img
}

// pageState is what the test reads from the page, in one round trip.
type pageState struct {
	State        string  `json:"state"` // #state's data-state
	StateText    string  `json:"stateText"`
	Greeting     string  `json:"greeting"`
	Clock        string  `json:"clock"`
	Since        string  `json:"since"`
	Reconnect    string  `json:"reconnect"`
	Conns        string  `json:"conns"`
	Echoes       int     `json:"echoes"`    // number of li in #echoes
	FirstEcho    string  `json:"firstEcho"` // text of the first (newest) li
	FirstRTT     string  `json:"firstRTT"`  // its round trip
	SendDisabled bool    `json:"sendDisabled"`
	ChartW       int     `json:"chartW"` // #chart's backing store
	ChartH       int     `json:"chartH"`
	ChartCSSW    int     `json:"chartCSSW"` // and its CSS size
	ChartCSSH    int     `json:"chartCSSH"`
	DPR          float64 `json:"dpr"`
	RTTPoints    int     `json:"rttPoints"` // points on the chart now
	ConnPoints   int     `json:"connPoints"`
}

const pageStateJS = `(() => {
	const $ = (id) => document.getElementById(id);
	const text = (e) => (e ? e.textContent.trim() : '');
	const li = document.querySelector('#echoes li');
	const chart = $('chart');
	return {
		state: $('state').dataset.state || '',
		stateText: text($('state')),
		greeting: text($('greeting')),
		clock: text($('clock')),
		since: text($('since')),
		reconnect: text($('reconnect')),
		conns: text($('conns')),
		echoes: document.querySelectorAll('#echoes li').length,
		firstEcho: li ? text(li.querySelector('.text')) : '',
		firstRTT: li ? text(li.querySelector('.rtt')) : '',
		sendDisabled: $('send').disabled,
		chartW: chart.width,
		chartH: chart.height,
		chartCSSW: chart.clientWidth,
		chartCSSH: chart.clientHeight,
		dpr: window.devicePixelRatio,
		rttPoints: Number(chart.dataset.rttPoints || 0),
		connPoints: Number(chart.dataset.connPoints || 0),
	};
})()`

// wait polls the page until ok, or fails the test after d with what it last
// saw.
func (b *browser) wait(what string, d time.Duration, ok func(pageState) bool) pageState {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	var (
		last    pageState
		lastErr error
		seen    bool
	)
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](pageStateJS))
		if err == nil {
			if ok(st) {
				return st
			}
			last, seen = st, true
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if !seen {
				b.t.Fatalf("waiting for %s: could not read the page: %v", what, lastErr)
			}
			b.t.Fatalf("waiting for %s: not within %v; the page shows %+v", what, d, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lockedBuffer collects the browser's output; the allocator writes to it
// from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
