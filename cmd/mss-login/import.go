package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/legacyimport"
	"github.com/mss-login/mss-login/internal/store"
)

func importCmd(g *globals) *cobra.Command {
	var secretEnv string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import ORIGINAL_DB",
		Short: "Import the users, MFA, API tokens, bans and allow list of an original MSS-Login SQLite database",
		Long: "Reads an original MSS-Login users database (an unencrypted SQLite file; see docs/import.md for an\n" +
			"encrypted one) and adds what carries over to the configured database: users with their password\n" +
			"hashes (they log in with the same passwords), roles, the owner, MFA secrets and the unused backup\n" +
			"code, API tokens (they keep working), IP bans, allow-list entries and locked devices. Users that\n" +
			"exist already are left as they are, so running it again is safe. Sessions do not carry over.\n" +
			"MFA secrets are decrypted with the original's SECRET_KEY, read from --source-secret-key-env.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withConfigStore(cmd, func(ctx context.Context, cfg *config.Config, s *store.Store) error {
				return runImport(ctx, g, cfg, s, args[0], os.Getenv(secretEnv), dryRun)
			})
		},
	}
	cmd.Flags().StringVar(&secretEnv, "source-secret-key-env", "SECRET_KEY", "environment variable holding the original's SECRET_KEY (for MFA secrets)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be imported and import nothing (the schema is still brought up to date, as by every admin command)")
	return cmd
}

func runImport(ctx context.Context, g *globals, cfg *config.Config, s *store.Store, path, secret string, dryRun bool) error {
	d, err := legacyimport.Read(ctx, path, secret)
	if err != nil {
		return err
	}
	target, err := legacyimport.TargetOf(ctx, s)
	if err != nil {
		return err
	}
	now := time.Now()
	p := legacyimport.Decide(d, target, now)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tIMPORT\tROLE\tOWNER\tMFA\tNOTE")
	for _, u := range p.Users {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%t\t%t\t%s\n", u.Source.Username, u.Import, dash(u.Role), u.Owner,
			u.Source.MFAEnabled && u.Source.TOTPSecret != "", dash(u.Note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sk := range p.Skipped {
		fmt.Fprintln(g.stdout, "skipped:", sk)
	}
	if dryRun {
		fmt.Fprintf(g.stdout, "dry run: %d API tokens, %d bans, %d allow-list entries, %d locked devices would be imported; nothing was written\n",
			len(p.Tokens), len(p.Bans), len(p.Allow), len(p.Devices))
		return nil
	}
	r, err := legacyimport.Apply(ctx, s, p, now, time.Duration(cfg.BlacklistExpiryHours)*time.Hour)
	for _, pr := range r.Problems {
		fmt.Fprintln(g.stdout, "not written:", pr)
	}
	fmt.Fprintf(g.stdout, "imported into %s: %d users (%d with MFA, %d backup codes), %d API tokens, %d bans, %d allow-list entries, %d locked devices\n",
		s.Where(), r.Users, r.MFA, r.BackupCodes, r.Tokens, r.Bans, r.Allow, r.Devices)
	if r.Allow > 0 {
		fmt.Fprintln(g.stdout, "note: allow-list entries switch on allow-list mode, as in the original: other addresses are refused")
	}
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
