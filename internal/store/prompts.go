package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrPromptTaken is returned by ClaimPrompt for a prompt id another user owns.
var ErrPromptTaken = errors.New("prompt id belongs to another user")

// ClaimPrompt records userID as the owner of promptID (a prompt about to be queued). Claiming
// an id one already owns again is fine; an id someone else owns is ErrPromptTaken.
func (s *Store) ClaimPrompt(ctx context.Context, promptID, userID string, at time.Time) error {
	if promptID == "" || len(promptID) > 64 {
		return errors.New("claim prompt: the id must be 1 to 64 characters")
	}
	res, err := s.exec(ctx, s.db, s.d.insertIgnore(`INSERT INTO prompt_owners (prompt_id, user_id, created_at) VALUES (?, ?, ?)`,
		"prompt_id"), promptID, userID, at.UnixMilli())
	if err != nil {
		return s.wrap("claim prompt", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	owners, err := s.PromptOwners(ctx, []string{promptID})
	if err != nil {
		return err
	}
	if owners[promptID] != userID {
		return ErrPromptTaken
	}
	return nil
}

// PromptOwners returns the owner (user id) of each of ids that has one.
func (s *Store) PromptOwners(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		// Not prepared: the statement's shape changes with the number of ids.
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT prompt_id, user_id FROM prompt_owners WHERE prompt_id IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`), args...)
		if err != nil {
			return nil, s.wrap("read prompt owners", err)
		}
		for rows.Next() {
			var p, u string
			if err := rows.Scan(&p, &u); err != nil {
				rows.Close()
				return nil, s.wrap("read prompt owners", err)
			}
			out[p] = u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("read prompt owners", err)
		}
	}
	return out, nil
}

// PrunePrompts forgets the owners of prompts recorded before before that ComfyUI no longer
// holds (keep: the ids still in its queue or history).
func (s *Store) PrunePrompts(ctx context.Context, before time.Time, keep map[string]bool) (int, error) {
	rows, err := s.query(ctx, s.db, `SELECT prompt_id FROM prompt_owners WHERE created_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, s.wrap("prune prompts", err)
	}
	var gone []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, s.wrap("prune prompts", err)
		}
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	rows.Close()
	n := 0
	for _, id := range gone {
		if _, err := s.exec(ctx, s.db, `DELETE FROM prompt_owners WHERE prompt_id = ?`, id); err != nil {
			return n, s.wrap("prune prompts", err)
		}
		n++
	}
	return n, nil
}
