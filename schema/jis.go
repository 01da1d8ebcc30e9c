package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/pipeline/event"
)

// AddBroadcasts records broadcasts (Seq is assigned: the supplier's next
// number, in the order given). A supplier's broadcast for a VIN it already
// has is skipped, so a redelivered event is harmless. It returns how many
// were added.
func (tx *Tx) AddBroadcasts(ctx context.Context, bs []event.Broadcast) (int, error) {
	added := 0
	for _, b := range bs {
		tag, err := tx.tx.Exec(ctx, `INSERT INTO jis_broadcasts (supplier, seq, vin, part_number, part_variant, install, event_id, passed_at)
			SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM jis_broadcasts WHERE supplier = $1
			ON CONFLICT (supplier, vin) DO NOTHING`,
			b.Supplier, b.VIN, b.PartNumber, b.PartVariant, b.Install, b.EventID, b.PassedAt)
		if err != nil {
			return added, fmt.Errorf("broadcast %s for %s (event %s): %w", b.Supplier, b.VIN, b.EventID, err)
		}
		added += int(tag.RowsAffected())
	}
	return added, nil
}

// UnpublishedBroadcasts returns up to limit broadcasts not yet published,
// each supplier's in order.
func (s *Store) UnpublishedBroadcasts(ctx context.Context, limit int) ([]event.Broadcast, error) {
	return s.broadcasts(ctx, `WHERE published_at IS NULL ORDER BY supplier, seq LIMIT $1`, limit)
}

// Broadcasts returns a supplier's broadcasts after seq (up to limit); with
// supplier "" every supplier's, each in order.
func (s *Store) Broadcasts(ctx context.Context, supplier string, afterSeq int64, limit int) ([]event.Broadcast, error) {
	if supplier == "" {
		return s.broadcasts(ctx, `WHERE seq > $2 ORDER BY supplier, seq LIMIT $1`, limit, afterSeq)
	}
	return s.broadcasts(ctx, `WHERE supplier = $2 AND seq > $3 ORDER BY seq LIMIT $1`, limit, supplier, afterSeq)
}

func (s *Store) broadcasts(ctx context.Context, where string, args ...any) ([]event.Broadcast, error) {
	rows, err := s.pool.Query(ctx, `SELECT supplier, seq, vin, part_number, part_variant, install, event_id, passed_at, published_at
		FROM jis_broadcasts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("broadcasts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event.Broadcast, error) {
		var b event.Broadcast
		err := r.Scan(&b.Supplier, &b.Seq, &b.VIN, &b.PartNumber, &b.PartVariant, &b.Install, &b.EventID, &b.PassedAt, &b.PublishedAt)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("broadcasts: %w", err)
	}
	return out, nil
}

// MarkPublished records that a supplier's broadcast seq is on the broker.
func (s *Store) MarkPublished(ctx context.Context, supplier string, seq int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE jis_broadcasts SET published_at = $3 WHERE supplier = $1 AND seq = $2 AND published_at IS NULL`, supplier, seq, at); err != nil {
		return fmt.Errorf("mark broadcast %s %d published: %w", supplier, seq, err)
	}
	return nil
}
