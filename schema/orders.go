package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The planner's orders: imported from files or the API, listed, cancelled.
// The sequencer's side (open orders, plans) is in sequence.go.

// ErrOrderExists is wrapped by ImportOrders when an order id of the import
// is already in the orders table; nothing is imported then.
var ErrOrderExists = errors.New("order already exists")

// Order statuses (the orders.status column).
const (
	OrderOpen      = "open"
	OrderSequenced = "sequenced"
	OrderCancelled = "cancelled"
)

// OrderStatuses are the allowed values of an order's status, in the order
// an order moves through them.
var OrderStatuses = []string{OrderOpen, OrderSequenced, OrderCancelled}

// Limits of the order queries.
const (
	// OrdersLimitDefault is how many orders Orders returns when given no
	// limit.
	OrdersLimitDefault = 1000
	// OrdersLimitMax is the most orders Orders returns at once.
	OrdersLimitMax = 100_000
	// orderIDsShown is how many ids an error names before "and N more".
	orderIDsShown = 20
)

// Order is one order as the planner loads it.
type Order struct {
	ID      string   `json:"order_id"`
	Model   string   `json:"model"`
	Variant string   `json:"variant"`
	Colour  string   `json:"colour"`
	Options []string `json:"options"`
	// Due is when the car should be built; zero: no date.
	Due time.Time `json:"due,omitzero"`
	// Priority orders cars due at the same time: higher first.
	Priority int `json:"priority"`
}

// OrderRow is an order as the orders table keeps it.
type OrderRow struct {
	Order
	Status string `json:"status"`
	// Source is the file the order was imported from, or "api".
	Source     string    `json:"source"`
	ImportedAt time.Time `json:"imported_at"`
}

// ImportOrders inserts orders, all open, with source (a file name or
// "api"), in one transaction, and returns how many it inserted. If any
// order id is already in the table, nothing is inserted and the error wraps
// ErrOrderExists and names the ids. Orders must be valid already (see
// pipeline/orders); an id twice in orders is an error.
func (s *Store) ImportOrders(ctx context.Context, source string, orders []Order) (int, error) {
	if len(orders) == 0 {
		return 0, errors.New("import orders: no orders")
	}
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	if dup := duplicates(ids); len(dup) > 0 {
		return 0, fmt.Errorf("import orders from %s: order ids given twice: %s", source, idList(dup))
	}
	err := s.WithTx(ctx, func(tx *Tx) error {
		rows, err := tx.tx.Query(ctx, `SELECT order_id FROM orders WHERE order_id = ANY($1) ORDER BY order_id`, ids)
		if err != nil {
			return err
		}
		existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return fmt.Errorf("%w: %s", ErrOrderExists, idList(existing))
		}
		_, err = tx.tx.CopyFrom(ctx, pgx.Identifier{"orders"},
			[]string{"order_id", "model", "variant", "colour", "options", "due", "priority", "status", "source"},
			pgx.CopyFromSlice(len(orders), func(i int) ([]any, error) {
				o := orders[i]
				opts := o.Options
				if opts == nil {
					opts = []string{}
				}
				var due any
				if !o.Due.IsZero() {
					due = o.Due
				}
				return []any{o.ID, o.Model, o.Variant, o.Colour, opts, due, o.Priority, OrderOpen, source}, nil
			}))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: imported by another meanwhile
			return fmt.Errorf("%w: %s", ErrOrderExists, pgErr.Detail)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("import %d orders from %s: %w", len(orders), source, err)
	}
	return len(orders), nil
}

// Orders returns up to limit orders with status (empty: any), the earliest
// due first (orders without a date last), then higher priority, then order
// id. limit ≤ 0 means OrdersLimitDefault; it is capped at OrdersLimitMax. A
// status other than those of OrderStatuses is an error.
func (s *Store) Orders(ctx context.Context, status string, limit int) ([]OrderRow, error) {
	if status != "" && !slices.Contains(OrderStatuses, status) {
		return nil, fmt.Errorf("orders: status %q is not allowed; allowed: %s (or none for all)", status, strings.Join(OrderStatuses, ", "))
	}
	if limit <= 0 {
		limit = OrdersLimitDefault
	}
	limit = min(limit, OrdersLimitMax)
	rows, err := s.pool.Query(ctx, `
		SELECT order_id, model, variant, colour, options, due, priority, status, source, imported_at
		FROM orders
		WHERE $1 = '' OR status = $1
		ORDER BY due NULLS LAST, priority DESC, order_id
		LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderRow, error) {
		var o OrderRow
		var due *time.Time
		err := r.Scan(&o.ID, &o.Model, &o.Variant, &o.Colour, &o.Options, &due, &o.Priority, &o.Status, &o.Source, &o.ImportedAt)
		if due != nil {
			o.Due = due.UTC()
		}
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return out, nil
}

// CancelOrder cancels the open order id. An order that does not exist is
// ErrNotFound (as is an id no order can have: not UTF-8, or with a NUL);
// one already sequenced or cancelled is ErrOrderNotOpen.
func (s *Store) CancelOrder(ctx context.Context, id string) error {
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return fmt.Errorf("cancel order %q: %w", id, ErrNotFound)
	}
	var status string
	err := s.pool.QueryRow(ctx, `
		WITH cancelled AS (
			UPDATE orders SET status = 'cancelled' WHERE order_id = $1 AND status = 'open' RETURNING order_id)
		SELECT coalesce((SELECT 'done' FROM cancelled), (SELECT status FROM orders WHERE order_id = $1), '')`, id).Scan(&status)
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	switch status {
	case "done":
		return nil
	case "":
		return fmt.Errorf("cancel order %s: %w", id, ErrNotFound)
	}
	return fmt.Errorf("cancel order %s: %w (it is %s)", id, ErrOrderNotOpen, status)
}

// duplicates returns the ids that appear more than once, sorted.
func duplicates(ids []string) []string {
	seen := make(map[string]int, len(ids))
	var dup []string
	for _, id := range ids {
		seen[id]++
		if seen[id] == 2 {
			dup = append(dup, id)
		}
	}
	slices.Sort(dup)
	return dup
}

// idList names ids, the first orderIDsShown of them.
func idList(ids []string) string {
	if len(ids) > orderIDsShown {
		return fmt.Sprintf("%s and %d more", strings.Join(ids[:orderIDsShown], ", "), len(ids)-orderIDsShown)
	}
	return strings.Join(ids, ", ")
}
