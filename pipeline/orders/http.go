package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/sequence"
	"github.com/keiline/keiline/schema"
)

// BodyMax is the largest orders upload the API takes (10 MiB).
const BodyMax = 10 << 20

// SourceAPI is the source recorded for orders posted to the API.
const SourceAPI = "api"

// OrderStore is the record as the orders API needs it; *schema.Store
// satisfies it.
type OrderStore interface {
	ImportOrders(ctx context.Context, source string, orders []schema.Order) (int, error)
	Orders(ctx context.Context, status string, limit int) ([]schema.OrderRow, error)
	CancelOrder(ctx context.Context, id string) error
}

// Handler serves the planner's orders API (see docs/orders.md):
//
//	POST   /api/orders        import a CSV (text/csv) or JSON (application/json) orders file
//	GET    /api/orders        list orders: ?status=open|sequenced|cancelled, ?limit=N
//	DELETE /api/orders/{id}   cancel an open order
//
// An upload with any bad order imports nothing and is answered 400 with
// every problem; one with an order id already recorded, 409. The store
// must be able to write orders (schema.RoleWriter).
func Handler(store OrderStore, products *line.Products, log *slog.Logger) http.Handler {
	h := &handler{store: store, products: products, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/orders", h.post)
	mux.HandleFunc("GET /api/orders", h.list)
	mux.HandleFunc("DELETE /api/orders/{id}", h.cancel)
	return mux
}

type handler struct {
	store    OrderStore
	products *line.Products
	log      *slog.Logger
}

// apiError is the body of every error answer.
type apiError struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
	Omitted  int       `json:"omitted,omitempty"`
}

func (h *handler) post(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var parse func(string, io.Reader, *line.Products) ([]sequence.Order, error)
	name := "request"
	switch {
	case err != nil:
	case mt == "text/csv":
		parse, name = ParseCSV, "request.csv"
	case mt == "application/json":
		parse, name = ParseJSON, "request.json"
	}
	if parse == nil {
		writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "Content-Type must be text/csv or application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, BodyMax))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "orders upload larger than " + strconv.Itoa(BodyMax>>20) + " MiB: split it"})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: "reading the upload: " + err.Error()})
		return
	}
	orders, err := parse(name, bytes.NewReader(body), h.products)
	var pe *ParseError
	switch {
	case errors.As(err, &pe):
		writeJSON(w, http.StatusBadRequest, apiError{
			Error:    strconv.Itoa(len(pe.Problems)+pe.Omitted) + " problem(s) in the orders; no order imported",
			Problems: pe.Problems, Omitted: pe.Omitted,
		})
		return
	case errors.Is(err, ErrNoProducts):
		h.log.Error("orders API: import refused", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	n, err := h.store.ImportOrders(r.Context(), SourceAPI, Record(orders))
	if errors.Is(err, schema.ErrOrderExists) {
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error() + "; no order imported"})
		return
	}
	if err != nil {
		h.internal(w, "import", err)
		return
	}
	h.log.Info("orders imported", "orders", n, "source", SourceAPI)
	writeJSON(w, http.StatusCreated, map[string]int{"imported": n})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && !slices.Contains(schema.OrderStatuses, status) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "status " + strconv.Quote(status) + " is not allowed; allowed: " + strings.Join(schema.OrderStatuses, ", ")})
		return
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "limit " + strconv.Quote(s) + " must be a positive integer"})
			return
		}
		limit = n
	}
	rows, err := h.store.Orders(r.Context(), status, limit)
	if err != nil {
		h.internal(w, "list", err)
		return
	}
	if rows == nil {
		rows = []schema.OrderRow{}
	}
	writeJSON(w, http.StatusOK, rows)
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.store.CancelOrder(r.Context(), id)
	switch {
	case errors.Is(err, schema.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "no order " + id})
	case errors.Is(err, schema.ErrOrderNotOpen):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
	case err != nil:
		h.internal(w, "cancel", err)
	default:
		h.log.Info("order cancelled", "order_id", id)
		writeJSON(w, http.StatusOK, map[string]string{"cancelled": id})
	}
}

// internal answers 500 with a safe message and logs the cause.
func (h *handler) internal(w http.ResponseWriter, what string, err error) {
	h.log.Error("orders API: "+what, "err", err)
	writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error: " + what + " failed (see the server log)"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
