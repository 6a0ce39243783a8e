package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/store"
)

// storeOptions maps the configuration onto the database it names.
func storeOptions(cfg *config.Config) store.Options {
	db := cfg.UsersDB
	o := store.Options{
		Backend:      store.Backend(db.Backend),
		MaxOpenConns: db.MaxOpenConnections,
		Password:     cfg.DatabasePassword.Reveal(),
		SecretKey:    cfg.SecretKey.Reveal(),
	}
	switch o.Backend {
	case store.PostgreSQL:
		o.Host, o.Port, o.Database, o.User, o.TLS = db.PostgresHost, db.PostgresPort, db.PostgresDatabase, db.PostgresUser, db.PostgresSSLMode
	case store.MySQL:
		o.Host, o.Port, o.Database, o.User, o.TLS = db.MySQLHost, db.MySQLPort, db.MySQLDatabase, db.MySQLUser, db.MySQLTLS
	default:
		o.SQLitePath, o.EncryptionLevel = cfg.SQLitePath(), crypt.Level(db.EncryptionLevel)
	}
	return o
}

// openStore opens and migrates the configured database: every process migrates at start.
func openStore(ctx context.Context, cfg *config.Config) (*store.Store, []int, error) {
	s, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return nil, nil, err
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, applied, nil
}

func adminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Break-glass and maintenance on the configured users database",
	}
	cmd.AddCommand(migrateCmd(g), rekeyCmd(g), usersCmd(g), lockoutsCmd(g), resetMFACmd(g), importCmd(g), auditCmd(g))
	return cmd
}

func migrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the users database schema to this binary's version (safe to run any time)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			s, applied, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(g.stdout, "users database %s is up to date (schema version %d)\n", s.Where(), v)
			} else {
				fmt.Fprintf(g.stdout, "users database %s: applied migrations %v, now at schema version %d\n", s.Where(), applied, v)
			}
			return nil
		},
	}
}

// newSecretEnv names the variable that carries the new secret for rekey: never a flag, since
// command lines are visible to every user of the machine.
const newSecretEnv = "MSS_LOGIN_NEW_SECRET_KEY"

func rekeyCmd(g *globals) *cobra.Command {
	var level string
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Re-encrypt the database for a new SECRET_KEY and/or SQLite encryption level, keeping every row",
		Long: "Re-encrypts the stored secrets (TOTP seeds, encrypted settings) for the SECRET_KEY given in\n" +
			"$" + newSecretEnv + " and, on SQLite, rewrites the file at --level (low, standard, secure,\n" +
			"or none). Stop the manager and the auth server first. Afterwards set SECRET_KEY and\n" +
			"users_db.encryption_level to the new values. A new SECRET_KEY also ends every login session.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			o := storeOptions(cfg)
			newSecret := os.Getenv(newSecretEnv)
			if newSecret == "" {
				newSecret = o.SecretKey
			} else if len(newSecret) < 32 {
				return fmt.Errorf("%s must be at least 32 characters", newSecretEnv)
			}
			newLevel := o.EncryptionLevel
			if cmd.Flags().Changed("level") {
				newLevel = crypt.Level(level)
				if level == "none" {
					newLevel = ""
				}
				if !crypt.ValidLevel(newLevel) {
					return fmt.Errorf("--level %q: want low, standard, secure or none", level)
				}
			}
			if newSecret == o.SecretKey && newLevel == o.EncryptionLevel {
				return errors.New("nothing to do: set " + newSecretEnv + " and/or --level")
			}
			if o.Backend != store.SQLite {
				if cmd.Flags().Changed("level") {
					return fmt.Errorf("--level applies to SQLite only; the database is %s", o.Backend)
				}
				s, _, err := openStore(ctx, cfg)
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.ReencryptFields(ctx, newSecret); err != nil {
					return err
				}
			} else {
				// Migrate first so that the copy is at the current schema.
				s, _, err := openStore(ctx, cfg)
				if err != nil {
					return err
				}
				s.Close()
				if err := store.RekeySQLite(ctx, o, newSecret, newLevel); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stdout, "rekeyed %s", o.Where())
			if o.Backend == store.SQLite {
				shown := string(newLevel)
				if shown == "" {
					shown = `"" (unencrypted)`
				}
				fmt.Fprintf(g.stdout, " to encryption level %s", shown)
			}
			fmt.Fprintln(g.stdout, ".\nNow set users_db.encryption_level and SECRET_KEY to the new values before starting mss-login.")
			return nil
		},
	}
	cmd.Flags().StringVar(&level, "level", "", "SQLite encryption level to write: low, standard, secure or none")
	return cmd
}
