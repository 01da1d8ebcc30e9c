package schema

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ChainProblem is the first place where the event log's hash chain breaks.
type ChainProblem struct {
	Seq     int64
	EventID string
	What    string
}

func (p *ChainProblem) Error() string {
	return fmt.Sprintf("event log row seq %d (event %s): %s", p.Seq, p.EventID, p.What)
}

// VerifyChain walks the event log in order and checks every row's hash and
// link. It returns the number of rows checked and the first problem found
// (nil when the chain is whole): a row whose content changed, a row
// missing (deleted), a row whose link does not match (inserted or reordered
// out of band), or a chain head that does not match the last row.
func (s *Store) VerifyChain(ctx context.Context) (int64, *ChainProblem, error) {
	var n int64
	var problem *ChainProblem
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, event_id, payload, prev_hash, hash FROM event_log ORDER BY seq`)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		var seq, want int64 = 0, 1
		var id string
		var payload, prevHash, hash, prev []byte
		prev = []byte{}
		_, err = pgx.ForEachRow(rows, []any{&seq, &id, &payload, &prevHash, &hash}, func() error {
			n++
			if problem != nil {
				return nil
			}
			switch {
			case seq != want:
				problem = &ChainProblem{Seq: seq, EventID: id, What: fmt.Sprintf("rows %d..%d are missing (deleted)", want, seq-1)}
			case !bytes.Equal(prevHash, prev):
				problem = &ChainProblem{Seq: seq, EventID: id, What: "link to the previous row does not match (inserted or altered out of band)"}
			case !bytes.Equal(hash, ChainHash(prev, seq, id, payload)):
				problem = &ChainProblem{Seq: seq, EventID: id, What: "content does not match its hash (changed)"}
			}
			prev, want = append([]byte(nil), hash...), seq+1
			return nil
		})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if problem != nil {
			return nil
		}
		var headSeq int64
		var headHash []byte
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
			return fmt.Errorf("audit: chain head: %w", err)
		}
		if headSeq != want-1 || !bytes.Equal(headHash, prev) {
			problem = &ChainProblem{Seq: headSeq, What: fmt.Sprintf("chain head (seq %d) does not match the last row (seq %d): rows removed from the end or added past it", headSeq, want-1)}
		}
		return nil
	})
	return n, problem, err
}
