package dashboard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Printing a page to PDF with headless Chromium through the DevTools
// protocol (chromedp): the report's own HTML and print style sheet make
// the PDF, so the page and the PDF never disagree.

// PDFTimeout bounds printing one PDF, the browser's start included.
const PDFTimeout = 60 * time.Second

// ChromiumPaths are where Chromium is looked for when none is given.
var ChromiumPaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"}

// ErrNoChromium: no Chromium was found to print with.
var ErrNoChromium = errors.New("no Chromium to print the PDF with: install Debian's chromium package or give its path")

// FindChromium returns path when it is set, else the first of
// ChromiumPaths found, else ErrNoChromium.
func FindChromium(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	for _, p := range ChromiumPaths {
		if full, err := exec.LookPath(p); err == nil {
			return full, nil
		}
	}
	return "", ErrNoChromium
}

// PrintPDF prints the HTML document doc to an A4 PDF with the Chromium at
// chromium ("" to look for one), started for the purpose with a fresh
// profile and stopped before it returns. The document must be
// self-contained: it is loaded from no address, so it can fetch nothing.
func PrintPDF(ctx context.Context, chromium string, doc []byte) ([]byte, error) {
	bin, err := FindChromium(chromium)
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "keiline-pdf-")
	if err != nil {
		return nil, fmt.Errorf("print pdf: %w", err)
	}
	defer os.RemoveAll(profile)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	err = chromedp.Do(bctx,
		chromedp.Navigate("about:blank"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			tree, err := chromedp.Call(ctx, cdppage.GetFrameTree, cdp.Empty{})
			if err != nil {
				return err
			}
			_, err = chromedp.Call(ctx, cdppage.SetDocumentContent, cdppage.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: string(doc)})
			return err
		}),
		chromedp.Poll[chromedp.Void](`document.readyState === 'complete'`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		return nil, fmt.Errorf("print pdf with %s: load the page: %w", bin, err)
	}
	pdf, err := chromedp.Run(bctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFMargin(0.4), chromedp.PDFPrintBackground()))
	if err != nil {
		return nil, fmt.Errorf("print pdf with %s: %w", bin, err)
	}
	return pdf, nil
}
