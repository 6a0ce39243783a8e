package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" encrypting VFS

	"github.com/mss-login/mss-login/internal/crypt"
)

var sqliteHeader = []byte("SQLite format 3\x00")

// sqliteURI names the file for the driver. The key is never part of it: it is set by PRAGMA on
// each new connection, so it cannot leak through the connection string.
func sqliteURI(path string, encrypted bool) string {
	u := url.URL{Scheme: "file", Path: path, OmitHost: true}
	// Named explicitly either way: VACUUM INTO would otherwise inherit the source's VFS.
	u.RawQuery = "vfs=os"
	if encrypted {
		u.RawQuery = "vfs=adiantum"
	}
	return u.String()
}

// fileState reports whether path is missing/empty, a plain SQLite file, or something else
// (an encrypted file, or not a database).
func fileState(path string) (exists, plain bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return false, false, nil
	}
	return true, bytes.Equal(head, sqliteHeader), nil
}

// connInit sets up each new connection to the file at path. The first connection to a file
// creates its -wal and -shm files, which the driver makes 0666 less the umask: they are made
// private (0600) before anything is written through the connection, like the file itself.
func connInit(path string, key []byte) func(*sqlite3.Conn) error {
	return func(c *sqlite3.Conn) error {
		if key != nil {
			// The error of a statement that carries the key is replaced, never passed on.
			if err := c.Exec("PRAGMA hexkey='" + hex.EncodeToString(key) + "'"); err != nil {
				return errors.New("setting the database key failed")
			}
		}
		err := c.Exec(`PRAGMA busy_timeout = 10000;
			PRAGMA foreign_keys = ON;
			PRAGMA journal_mode = WAL;
			PRAGMA synchronous = NORMAL;
			PRAGMA temp_store = MEMORY;`)
		if err != nil {
			return err
		}
		// A read opens the WAL (creating both files) so they exist to be made private now.
		if err := c.Exec(`SELECT count(*) FROM sqlite_master`); err != nil {
			return err
		}
		return privateFiles(path, path+"-wal", path+"-shm")
	}
}

// privateFiles makes the files that exist of paths readable by their owner only.
func privateFiles(paths ...string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("making %s private: %w", p, err)
			}
		}
	}
	return nil
}

func openSQLite(ctx context.Context, o Options) (*sql.DB, error) {
	if o.SQLitePath == "" {
		return nil, errors.New("users_db.sqlite_path is empty")
	}
	if !crypt.ValidLevel(o.EncryptionLevel) {
		return nil, fmt.Errorf("users_db.encryption_level %q is not one of low, standard, secure or empty", o.EncryptionLevel)
	}
	if err := os.MkdirAll(filepath.Dir(o.SQLitePath), 0o700); err != nil {
		return nil, err
	}
	exists, plain, err := fileState(o.SQLitePath)
	if err != nil {
		return nil, err
	}
	encrypted := o.EncryptionLevel != ""
	switch {
	case exists && plain && encrypted:
		return nil, fmt.Errorf("the file is not encrypted but users_db.encryption_level is %q: "+
			"run `mss-login admin rekey --level %s` with the level set to \"\" to encrypt it, or set the level to \"\"",
			o.EncryptionLevel, o.EncryptionLevel)
	case exists && !plain && !encrypted:
		return nil, errors.New("the file is encrypted (or not an SQLite database) but users_db.encryption_level is empty: " +
			"set users_db.encryption_level and SECRET_KEY to the values it was written with")
	}
	var key []byte
	if encrypted {
		if key, err = crypt.DatabaseKey(o.SecretKey, o.EncryptionLevel); err != nil {
			return nil, err
		}
	}
	if !exists {
		// Created private, not 0666 less the umask as the driver would.
		f, err := os.OpenFile(o.SQLitePath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	db, err := driver.Open(sqliteURI(o.SQLitePath, encrypted), connInit(o.SQLitePath, key))
	if err != nil {
		return nil, err
	}
	// WAL lets readers run beside the one writer; writers wait on the busy timeout.
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	// The first connection switches the file to WAL and, for a new file, writes its header now
	// so that a second process sees it encrypted. Switching the journal mode is refused with
	// BUSY rather than waited for while another process does the same, hence the retries.
	err = retryBusy(ctx, func() error {
		_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations "+
			"(version INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, applied_at BIGINT NOT NULL)")
		return err
	})
	if err != nil {
		db.Close()
		if exists && encrypted && errors.Is(err, sqlite3.NOTADB) {
			return nil, diagnoseKey(o)
		}
		return nil, err
	}
	return db, nil
}

func retryBusy(ctx context.Context, f func() error) error {
	delay := 10 * time.Millisecond
	for {
		err := f()
		if !errors.Is(err, sqlite3.BUSY) || delay > 2*time.Second {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// diagnoseKey explains why an encrypted file does not open: the level changed (the file opens
// with another level's key) or SECRET_KEY is not the one it was written with.
func diagnoseKey(o Options) error {
	for _, l := range crypt.Levels {
		if l == o.EncryptionLevel {
			continue
		}
		k, err := crypt.DatabaseKey(o.SecretKey, l)
		if err == nil && canRead(o.SQLitePath, k) {
			return fmt.Errorf("cannot decrypt: the file was encrypted at users_db.encryption_level %q, "+
				"but the configuration says %q (use `mss-login admin rekey` to change the level)", l, o.EncryptionLevel)
		}
	}
	return errors.New("cannot decrypt: SECRET_KEY is not the one this file was encrypted with " +
		"(or the file is not an mss-login database)")
}

func canRead(path string, key []byte) bool {
	db, err := driver.Open(sqliteURI(path, true)+"&mode=ro", connInit(path, key))
	if err != nil {
		return false
	}
	defer db.Close()
	var n int
	return db.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n) == nil
}

// RekeySQLite rewrites the SQLite file of o with a new SECRET_KEY and/or encryption level,
// keeping every row, and re-encrypts the encrypted fields for the new secret. The file is
// replaced atomically; the old one is kept next to it as <name>.before-rekey until the new one
// has been written and verified. No other process may use the file meanwhile.
func RekeySQLite(ctx context.Context, o Options, newSecret string, newLevel crypt.Level) error {
	if o.Backend != SQLite {
		return fmt.Errorf("RekeySQLite: backend is %s", o.Backend)
	}
	if !crypt.ValidLevel(newLevel) {
		return fmt.Errorf("unknown encryption level %q", newLevel)
	}
	src, err := Open(ctx, o)
	if err != nil {
		return err
	}
	tmp := o.SQLitePath + ".rekey"
	_ = os.Remove(tmp)
	var target string
	if newLevel == "" {
		target = sqliteURI(tmp, false)
	} else {
		key, err := crypt.DatabaseKey(newSecret, newLevel)
		if err != nil {
			src.Close()
			return err
		}
		target = sqliteURI(tmp, true) + "&hexkey=" + hex.EncodeToString(key)
	}
	_, err = src.db.ExecContext(ctx, "VACUUM INTO ?", target)
	src.Close()
	if err != nil {
		_ = os.Remove(tmp)
		return errors.New("rekey: copying the database failed (the original file is unchanged)")
	}
	no := o
	no.SQLitePath, no.SecretKey, no.EncryptionLevel = tmp, newSecret, newLevel
	dst, err := Open(ctx, no)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rekey: the new file does not open (the original file is unchanged): %w", err)
	}
	if newSecret != o.SecretKey {
		err = dst.reencryptFields(ctx, o.SecretKey, newSecret)
	}
	if err == nil {
		_, err = dst.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	dst.Close()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rekey: %w (the original file is unchanged)", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(tmp + suffix)
	}
	backup := o.SQLitePath + ".before-rekey"
	if err := os.Rename(o.SQLitePath, backup); err != nil {
		return err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(o.SQLitePath + suffix)
	}
	if err := os.Rename(tmp, o.SQLitePath); err != nil {
		_ = os.Rename(backup, o.SQLitePath)
		return err
	}
	return os.Remove(backup)
}
