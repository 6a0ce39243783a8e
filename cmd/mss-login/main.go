// Command mss-login is the one binary of mss-login: the operator (manager), the auth server,
// the S3 sync sidecar and the maintenance commands, as subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		var shown silentError
		if !errors.As(err, &shown) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

// silentError is an error whose details were already printed.
type silentError struct{ error }

// globals are the flags every subcommand shares.
type globals struct {
	configFile string
	stdout     io.Writer
	stderr     io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "mss-login",
		Short:         "Accounts, roles, API tokens, lockout and IP rules in front of ComfyUI, on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configFile, "config", "",
		"configuration file (default: $MSS_LOGIN_DATA_DIR/config.json when it exists)")
	root.AddCommand(versionCmd(g), configCmd(g), adminCmd(g), managerCmd(g), authserverCmd(g), s3syncCmd(g), devCmd(g))
	return root
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			v := version.Version
			if version.Commit != "" {
				v += " (" + version.Commit + ")"
			}
			fmt.Fprintln(g.stdout, "mss-login", v)
		},
	}
}

// load reads the configuration (defaults ⊕ file ⊕ environment) and prints its notes once.
func (g *globals) load() (*config.Config, error) {
	cfg, report, err := config.Load(config.LoadOptions{File: g.configFile, RequireFile: g.configFile != ""})
	printReport(g.stderr, report)
	if err != nil {
		printConfigErrors(g.stderr, err)
		return nil, silentError{err}
	}
	return cfg, nil
}

func printReport(w io.Writer, r *config.Report) {
	if r == nil {
		return
	}
	for _, k := range r.Ignored {
		fmt.Fprintf(w, "note: %s has no meaning in mss-login and is ignored\n", k)
	}
	for _, m := range r.Warnings {
		fmt.Fprintln(w, "warning:", m)
	}
}

func printConfigErrors(w io.Writer, err error) {
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		errs := multi.Unwrap()
		fmt.Fprintf(w, "configuration: %d problem(s):\n", len(errs))
		for _, e := range errs {
			fmt.Fprintln(w, "  -", e)
		}
		return
	}
	fmt.Fprintln(w, "configuration:", err)
}

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a configuration file and print the effective configuration, secrets redacted",
		Long: "Loads the embedded defaults, then FILE (or --config, or $MSS_LOGIN_DATA_DIR/config.json), then the\n" +
			"environment, and prints the result as JSON with every secret redacted. Exits non-zero on any problem.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				g.configFile = args[0]
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			out, err := cfg.Redacted()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, string(out))
			return nil
		},
	})
	return cmd
}
