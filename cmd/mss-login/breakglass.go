package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// Break-glass commands on the configured database, like `authelia storage bans`: for when
// nobody can log in, or a cluster is not at hand. They write the audit trail as "admin-cli".

// withStore loads the configuration, opens and migrates the database, and runs f.
func (g *globals) withStore(cmd *cobra.Command, f func(ctx context.Context, s *store.Store) error) error {
	return g.withConfigStore(cmd, func(ctx context.Context, _ *config.Config, s *store.Store) error { return f(ctx, s) })
}

// withConfigStore is withStore for a command that also reads the configuration it loaded.
func (g *globals) withConfigStore(cmd *cobra.Command, f func(ctx context.Context, cfg *config.Config, s *store.Store) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	s, _, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(cmd.Context(), cfg, s)
}

func audit(ctx context.Context, s *store.Store, action, target string) {
	_ = s.Audit(ctx, store.AuditEvent{Actor: "admin-cli", Action: action, Target: target, Detail: "mss-login admin"})
}

// managedNote warns that the operator will put a resource-owned row back.
func managedNote(w io.Writer, u store.User) {
	if u.OwnerRef != "" {
		fmt.Fprintf(w, "note: %s is managed by %s; the operator restores it from the resource on its next resync\n",
			u.Username, strings.Replace(u.OwnerRef, "/", " ", 1))
	}
}

func usersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "List users, set a password, disable or enable an account"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List the users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				users, err := s.Users(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tROLE\tOWNER\tDISABLED\tMFA\tMANAGED BY\tLAST LOGIN")
				for _, u := range users {
					last := "-"
					if !u.LastLoginAt.IsZero() {
						last = u.LastLoginAt.Format(time.RFC3339)
					}
					managed := u.OwnerRef
					if managed == "" {
						managed = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%t\t%t\t%t\t%s\t%s\n", u.Username, u.Role, u.Owner, u.Disabled, u.MFAEnabled, managed, last)
				}
				return tw.Flush()
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Set a user's password, read from standard input (never from a flag), and end its sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readSecretLine(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				u, err := s.UserByName(ctx, args[0])
				if err != nil {
					return fmt.Errorf("user %q: %w", args[0], err)
				}
				h, err := password.Hash(pw)
				if err != nil {
					return err
				}
				if err := s.SetPasswordHash(ctx, u.ID, h); err != nil {
					return err
				}
				if err := s.RevokeUserCredentials(ctx, u.ID); err != nil {
					return err
				}
				audit(ctx, s, "password.reset", u.Username)
				fmt.Fprintf(g.stdout, "password of %s set; its sessions and API tokens were ended\n", u.Username)
				managedNote(g.stdout, u)
				return nil
			})
		},
	})
	for _, disable := range []bool{true, false} {
		use, short := "enable USERNAME", "Enable an account"
		if disable {
			use, short = "disable USERNAME", "Disable an account: login refused, sessions, tokens and sockets ended"
		}
		cmd.AddCommand(&cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
					u, err := s.UserByName(ctx, args[0])
					if err != nil {
						return fmt.Errorf("user %q: %w", args[0], err)
					}
					u.Disabled = disable
					if err := s.UpdateUser(ctx, u); err != nil {
						return err
					}
					audit(ctx, s, map[bool]string{true: "user.disabled", false: "user.enabled"}[disable], u.Username)
					fmt.Fprintf(g.stdout, "%s %s\n", u.Username, map[bool]string{true: "disabled", false: "enabled"}[disable])
					managedNote(g.stdout, u)
					return nil
				})
			},
		})
	}
	return cmd
}

func lockoutsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lockouts", Short: "List and lift bans and device locks"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List active bans and device locks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				now := time.Now()
				bans, err := s.Bans(ctx, now)
				if err != nil {
					return err
				}
				devices, err := s.LockedDevices(ctx, now)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SUBJECT\tKIND\tREASON\tSINCE\tEXPIRES")
				expires := func(t time.Time) string {
					if t.IsZero() {
						return "never"
					}
					return t.Format(time.RFC3339)
				}
				for _, b := range bans {
					fmt.Fprintf(tw, "%s\tip (%s)\t%s\t%s\t%s\n", b.CIDR.Addr(), b.Source, b.Reason, b.CreatedAt.Format(time.RFC3339), expires(b.ExpiresAt))
				}
				for _, d := range devices {
					fmt.Fprintf(tw, "%s\tdevice\t%s\t%s\t%s\n", d.DeviceID, d.Reason, d.CreatedAt.Format(time.RFC3339), expires(d.ExpiresAt))
				}
				return tw.Flush()
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "unlock IP|DEVICE-ID",
		Short: "Lift the ban of an address (with its failure count) or the lock of a device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				subject := args[0]
				if a, perr := netip.ParseAddr(subject); perr == nil {
					// Unban forgets the address's failures too, banned or not: say what was done.
					switch err := s.Unban(ctx, a); {
					case errors.Is(err, store.ErrNotFound):
						audit(ctx, s, "lockout.lifted", subject)
						fmt.Fprintf(g.stdout, "%s was not banned; its failed logins (and any cooldown) are forgotten\n", subject)
						return nil
					case err != nil:
						return err
					}
					audit(ctx, s, "lockout.lifted", subject)
					fmt.Fprintf(g.stdout, "%s unbanned; its failed logins are forgotten\n", subject)
					return nil
				}
				err := s.UnlockDevice(ctx, subject)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("device %s is not locked (nothing changed)", subject)
				}
				if err != nil {
					return err
				}
				audit(ctx, s, "lockout.lifted", subject)
				fmt.Fprintf(g.stdout, "%s unlocked\n", subject)
				return nil
			})
		},
	})
	return cmd
}

func resetMFACmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "reset-mfa USERNAME", Short: "Remove a user's MFA enrolment and backup codes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				u, err := s.UserByName(ctx, args[0])
				if err != nil {
					return fmt.Errorf("user %q: %w", args[0], err)
				}
				if err := s.SetMFA(ctx, u.ID, "", false); err != nil {
					return err
				}
				audit(ctx, s, "mfa.reset", u.Username)
				fmt.Fprintf(g.stdout, "MFA of %s removed; it enrols again at the next login if its role requires MFA\n", u.Username)
				return nil
			})
		},
	}
}

// readSecretLine reads one line (a password) from r; a terminal echo is the caller's business:
// pipe it in (`printf %s "$PW" | mss-login admin users set-password alice`).
func readSecretLine(r io.Reader) (string, error) {
	if f, ok := r.(*os.File); ok && f == os.Stdin {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(os.Stderr, "new password: ")
		}
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 8 {
		return "", errors.New("the password (from standard input) must be at least 8 characters")
	}
	return line, nil
}

func auditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	var (
		q            store.AuditQuery
		since, until string
		asJSON       bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first (a table, or JSON lines with --json for log shippers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range []struct {
				flag, v string
				into    *time.Time
			}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
				if t.v == "" {
					continue
				}
				at, err := time.Parse(time.RFC3339, t.v)
				if err != nil {
					return fmt.Errorf("%s %q: a time as RFC 3339 (2026-12-03T10:00:00Z)", t.flag, t.v)
				}
				*t.into = at
			}
			return g.withStore(cmd, func(ctx context.Context, s *store.Store) error {
				events, next, err := s.QueryAudit(ctx, q)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(g.stdout)
					for _, e := range events {
						if err := enc.Encode(e); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tTARGET\tADDRESS\tDETAIL")
				for _, e := range events {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), dash(e.Actor), e.Action, dash(e.Target),
						dash(e.ClientIP), dash(e.Detail))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if next > 0 {
					fmt.Fprintf(g.stdout, "more: --cursor %d\n", next)
				}
				return nil
			})
		},
	}
	f := list.Flags()
	f.StringVar(&q.Actor, "user", "", "events of this actor")
	f.StringVar(&q.Action, "action", "", `this action, or a prefix ending in "*" ("login.*")`)
	f.StringVar(&q.ClientIP, "address", "", "events from this client address")
	f.StringVar(&since, "since", "", "events at or after this time (RFC 3339)")
	f.StringVar(&until, "until", "", "events before this time (RFC 3339)")
	f.Int64Var(&q.Before, "cursor", 0, "events older than this id: the next page, as the last one said")
	f.IntVar(&q.Limit, "limit", 100, "at most this many events (up to 1,000)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.AddCommand(list)
	return cmd
}
