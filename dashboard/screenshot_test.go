package dashboard_test

import (
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshot takes the README's screenshot of a running dashboard:
//
//	go run ./cmd/keiline up --speed 30 --state /tmp/shot &   # prints the dashboard's URL
//	KEILINE_SCREENSHOT_URL=http://127.0.0.1:8080/ KEILINE_SCREENSHOT_OUT=$PWD/docs/dashboard.png \
//	    go test -run TestScreenshot ./dashboard/
//
// It is skipped unless KEILINE_SCREENSHOT_URL is set.
func TestScreenshot(t *testing.T) {
	url, out := os.Getenv("KEILINE_SCREENSHOT_URL"), os.Getenv("KEILINE_SCREENSHOT_OUT")
	if url == "" || out == "" {
		t.Skip("set KEILINE_SCREENSHOT_URL and KEILINE_SCREENSHOT_OUT to take the screenshot")
	}
	b := newBrowser(t, 1680, 1050)
	b.do(t, chromedp.Navigate(url),
		chromedp.Poll[chromedp.Void](`document.querySelector('#conn.live') && document.querySelector('#shift').dataset.asOf`,
			chromedp.WithPollingTimeout(30*time.Second)),
	)
	if q := os.Getenv("KEILINE_SCREENSHOT_CAR"); q != "" {
		b.do(t, chromedp.SetValue("#q", q), chromedp.Click("#search button"),
			chromedp.Poll[chromedp.Void](`document.querySelector('#car-where')`, chromedp.WithPollingTimeout(10*time.Second)))
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
