package store

import (
	"context"
	"database/sql"
)

// ListedModel is a model file that a source lists: ComfyUI (SourceComfyUI) or an S3Mount.
type ListedModel struct {
	Folder, Name, Source string
}

// SourceComfyUI is the source of the models ComfyUI lists, as the auth server last read them.
const SourceComfyUI = "comfyui"

// SetListedModels makes models the list of what source holds. Unchanged lists write nothing;
// an S3Mount's list moves the grants' change counter (the auth servers hide S3 models by it).
func (s *Store) SetListedModels(ctx context.Context, source string, models []ListedModel) error {
	current, err := s.ListedModels(ctx, source)
	if err != nil {
		return err
	}
	have := map[ListedModel]bool{}
	for _, m := range current {
		have[m] = true
	}
	want := map[ListedModel]bool{}
	for _, m := range models {
		m.Source = source
		want[m] = true
	}
	if len(have) == len(want) && func() bool {
		for m := range want {
			if !have[m] {
				return false
			}
		}
		return true
	}() {
		return nil
	}
	var topics []string
	if source != SourceComfyUI {
		topics = []string{TopicGrants}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM model_listings WHERE source = ?`, source); err != nil {
			return s.wrap("record listed models", err)
		}
		t := now().UnixMilli()
		for m := range want {
			if _, err := s.exec(ctx, tx, `INSERT INTO model_listings (source, folder, name, updated_at) VALUES (?, ?, ?, ?)`,
				source, m.Folder, m.Name, t); err != nil {
				return s.wrap("record listed models", err)
			}
		}
		return nil
	}, topics...)
}

// ListedModels returns the models source lists ("" for every source).
func (s *Store) ListedModels(ctx context.Context, source string) ([]ListedModel, error) {
	q, args := `SELECT source, folder, name FROM model_listings`, []any{}
	if source != "" {
		q, args = q+` WHERE source = ?`, []any{source}
	}
	return list(ctx, s, "read listed models", func(sc scanner) (ListedModel, error) {
		var m ListedModel
		err := sc.Scan(&m.Source, &m.Folder, &m.Name)
		return m, err
	}, q, args...)
}
