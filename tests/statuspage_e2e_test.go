//go:build unix

package tests

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// The admin endpoint's status page, in a real headless browser: it logs
// in with the token once, shows the pools and their workers with state and
// memory, and refreshes on its own: a failed call and a killed worker show
// up without a reload.
func TestStatusPageInAHeadlessBrowser(t *testing.T) {
	browser := testutil.Chromium(t)
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("page"),
		Pools: []snakepit.PoolConfig{{Name: "page", Size: 2}}})
	srv, err := admin.Serve(app, admin.Options{Logger: testutil.QuietLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })

	// Without the token, neither the page nor its data.
	for _, path := range []string{"/", "/api/status", "/login?token=wrong"} {
		resp, err := http.Get("http://" + srv.Address() + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel() // ends the browser this test started
	// The first action starts the browser: no timeout on its context (it
	// would end the browser); a browser that never starts is cancelled.
	guard := time.AfterFunc(90*time.Second, cancel)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.PageURL())))
	guard.Stop()
	bounded, cancelB := context.WithTimeout(ctx, 60*time.Second)
	defer cancelB()
	run := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bounded, a)
		require.NoError(t, err)
		return v
	}
	require.NoError(t, chromedp.Do(bounded, chromedp.WaitVisible(`#pools tbody tr[data-pool="page"]`)))
	assert.NotContains(t, run(chromedp.Location()), "token", "the token leaves the address bar")
	assert.Equal(t, "ready", run(chromedp.Text(`#pools tbody tr[data-pool="page"] [data-state]`)))
	rows, err := chromedp.Run(bounded, chromedp.Nodes(`table.workers[data-pool="page"] tbody tr`))
	require.NoError(t, err)
	assert.Len(t, rows, 2)
	assert.Contains(t, run(chromedp.Text(`table.workers[data-pool="page"] tbody tr td:last-child`)), "MiB")

	// A failed call and a killed worker appear on the page by themselves.
	_, err = app.Execute(t.Context(), "raise_error", map[string]string{"kind": "value", "message": "shown on the page"})
	require.Error(t, err)
	ws, err := app.Workers(t.Context(), "page")
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(ws[0].OSPid, syscall.SIGKILL))
	require.NoError(t, chromedp.Do(bounded, chromedp.WaitVisible(`#events tbody tr[data-kind="crashed"]`)))
	errorsText := run(chromedp.Text(`#errors tbody`))
	eventsText := run(chromedp.Text(`#events tbody`))
	assert.Contains(t, errorsText, "shown on the page")
	assert.Contains(t, errorsText, "raise_error")
	assert.True(t, strings.Contains(eventsText, ws[0].ID), eventsText)
}
