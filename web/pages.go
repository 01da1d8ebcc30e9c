package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
)

//go:embed assets
var assets embed.FS

// texts are the sign-in pages' words, per language.
var texts = map[string]map[string]string{
	"en": {
		"sign_in":           "Sign in",
		"user":              "User name",
		"password":          "Password",
		"refused":           "Sign-in failed. Check the user name and password. After repeated failures, sign-in is paused for a while.",
		"rate_limited":      "Too many sign-in attempts. Wait a minute and try again.",
		"signed_out":        "You have signed out.",
		"change_password":   "Change password",
		"current_password":  "Current password",
		"new_password":      "New password (at least 12 characters)",
		"confirm_password":  "New password again",
		"save":              "Save",
		"back":              "Back to the dashboard",
		"password_changed":  "Password changed. Your other sessions have been signed out.",
		"password_mismatch": "The two new passwords differ.",
		"password_weak":     "The new password is refused:",
		"password_refused":  "The current password is wrong, or there were too many wrong passwords: try again later.",
		"kiosk":             "Line display",
		"kiosk_help":        "Sign this display in with a display token (dashboard:read) from an administrator.",
		"kiosk_token":       "Display token",
		"kiosk_refused":     "This token cannot sign in a display: it is unknown, expired, revoked, or lacks dashboard:read.",
		"bad_form":          "The form could not be read. Reload the page and try again.",
	},
	"ja": {
		"sign_in":           "サインイン",
		"user":              "ユーザー名",
		"password":          "パスワード",
		"refused":           "サインインできませんでした。ユーザー名とパスワードを確認してください。失敗が続くと、しばらくサインインできなくなります。",
		"rate_limited":      "サインインの試行が多すぎます。1分ほど待ってから、もう一度お試しください。",
		"signed_out":        "サインアウトしました。",
		"change_password":   "パスワードの変更",
		"current_password":  "現在のパスワード",
		"new_password":      "新しいパスワード（12文字以上）",
		"confirm_password":  "新しいパスワード（確認）",
		"save":              "保存",
		"back":              "ダッシュボードへ戻る",
		"password_changed":  "パスワードを変更しました。ほかのセッションはサインアウトされました。",
		"password_mismatch": "新しいパスワードが一致しません。",
		"password_weak":     "新しいパスワードは使えません（12文字以上、ユーザー名を含まないもの）:",
		"password_refused":  "現在のパスワードが違うか、失敗が続いています。しばらくしてからお試しください。",
		"kiosk":             "ライン表示",
		"kiosk_help":        "管理者から受け取った表示用トークン（dashboard:read）で、この画面をサインインします。",
		"kiosk_token":       "表示用トークン",
		"kiosk_refused":     "このトークンでは表示をサインインできません（不明、期限切れ、失効、または dashboard:read がない）。",
		"bad_form":          "フォームを読み取れませんでした。ページを再読み込みしてください。",
	},
}

// langNames are the languages as the switch shows them.
var langNames = map[string]string{"en": "EN", "ja": "日本語"}

// pages are the sign-in, password and kiosk pages.
type pages struct {
	tmpl   *template.Template
	static http.Handler
}

func newPages() (*pages, error) {
	for _, l := range Languages {
		if len(texts[l]) != len(texts[Languages[0]]) {
			return nil, fmt.Errorf("web: texts: %q has %d texts, %q %d", l, len(texts[l]), Languages[0], len(texts[Languages[0]]))
		}
	}
	t, err := template.ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return &pages{tmpl: t, static: http.FileServerFS(sub)}, nil
}

// page is what a page template gets.
type page struct {
	Lang, Title, Msg, Detail string
	OK                       bool
	T                        map[string]string
	Next, CSRF, Who, Script  string
	Langs                    []langLink
}

type langLink struct {
	Lang, Name, Href string
	Active           bool
}

// render writes the template name with p at status.
func (ps *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.T = texts[p.Lang]
	for _, l := range Languages {
		q := url.Values{"lang": {l}}
		if p.Next != "" && p.Next != "/" {
			q.Set("next", p.Next)
		}
		p.Langs = append(p.Langs, langLink{Lang: l, Name: langNames[l], Href: "?" + q.Encode(), Active: l == p.Lang})
	}
	var buf bytes.Buffer
	if err := ps.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		writeError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveStatic serves the pages' stylesheet and script.
func (ps *pages) serveStatic(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("file") {
	case "auth.css", "kiosk.js":
		w.Header().Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + r.PathValue("file")
		ps.static.ServeHTTP(w, r2)
	default:
		http.NotFound(w, r)
	}
}
