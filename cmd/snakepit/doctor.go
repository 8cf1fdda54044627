package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snakepit-go/snakepit/apps/snakepit/configfile"
	"github.com/snakepit-go/snakepit/internal/doctor"
)

// errDoctorFailed is doctor's error when a check failed (the checks say which).
var errDoctorFailed = errors.New("doctor: a check failed")

func newDoctorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine: Python and why that one, grpc/protobuf, the bridge, the adapter, directories, ports, GPUs",
		Long: `doctor checks what workers need, in the order they need it: the Python interpreter (and why it
was chosen), its grpcio and protobuf, the Python bridge, that each adapter imports and its initialize()
succeeds, that the data and socket directories are usable, that configured ports are free, and the
NVIDIA GPUs. It exits 1 when a check fails and names the broken part with what to do.
-config FILE checks a config file's pools, directories and addresses.`,
		Args: usageArgs(cobra.NoArgs),
	}
	fs := cmd.Flags()
	adapters := fs.StringArray("adapter", nil, "adapter class to import and initialise (repeat; default the showcase adapter)")
	cfgPath := fs.String("config", "", "a config file whose pools, data directory and addresses to check")
	dataDir := fs.String("data-dir", "", "data directory (default $SNAKEPIT_DATA_DIR, else ~/.local/state/snakepit)")
	asJSON := fs.Bool("json", false, "print the checks as a JSON array")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o := doctor.Options{PythonPath: g.pythonPath, PrivDir: g.privDir, Adapters: *adapters, DataDir: *dataDir}
		if *cfgPath != "" {
			f, err := configfile.Load(*cfgPath)
			if err != nil {
				return err
			}
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			for _, p := range cfg.Pools {
				if p.Adapter != "" && len(*adapters) == 0 {
					o.Adapters = append(o.Adapters, p.Adapter)
				}
			}
			o.PythonPath = append(o.PythonPath, cfg.PythonPath...)
			if o.PrivDir == "" {
				o.PrivDir = cfg.PrivDir
			}
			if o.DataDir == "" {
				o.DataDir = cfg.DataDir
			}
			if !f.Admin.Disabled {
				o.Addresses = append(o.Addresses, f.Admin.Address)
			}
			if f.Metrics.Enabled {
				o.Addresses = append(o.Addresses, f.Metrics.Address)
			}
		}
		checks := doctor.Run(cmd.Context(), o)
		out := cmd.OutOrStdout()
		if *asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(checks); err != nil {
				return err
			}
		} else {
			for _, c := range checks {
				fmt.Fprintf(out, "%-5s %-18s %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Detail)
				if c.Fix != "" {
					fmt.Fprintf(out, "      %-18s fix: %s\n", "", c.Fix)
				}
			}
		}
		if doctor.Failed(checks) {
			return errDoctorFailed
		}
		return nil
	}
	return cmd
}
