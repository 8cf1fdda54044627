package main

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/pyenv"
)

//go:embed templates/adapter/*.tmpl
var adapterTemplates embed.FS

// adapterFiles maps each template to where it goes in the new project.
var adapterFiles = map[string]string{
	"__init__.py.tmpl":      "{{.Name}}/__init__.py",
	"adapter.py.tmpl":       "{{.Name}}/adapter.py",
	"test_adapter.py.tmpl":  "tests/test_adapter.py",
	"requirements.txt.tmpl": "requirements.txt",
	"pyproject.toml.tmpl":   "pyproject.toml",
	"snakepit.yaml.tmpl":    "snakepit.yaml",
	"README.md.tmpl":        "README.md",
}

// pythonName is a module name: lower case, digits and underscores.
var pythonName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

var pythonKeywords = []string{"False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
	"continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
	"is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield"}

// adapterProject is what the templates see.
type adapterProject struct {
	Name, Class, TestCommand string
}

func newGenAdapterCmd(*globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen-adapter NAME",
		Short: "Make an adapter package NAME with tests that pass out of the box, and print the command that runs them",
		Long: `gen-adapter makes a directory NAME (in -dir) holding a Python package NAME with an adapter class
(two tools, initialize and cleanup), pytest tests that run it in process and through a real worker,
requirements.txt, pyproject.toml, a snakepit.yaml that serves it and a README. It prints the test
command, which passes as made. NAME is a Python module name (lower case, digits, underscores).`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	dir := cmd.Flags().String("dir", ".", "directory to make NAME in")
	force := cmd.Flags().Bool("force", false, "write into NAME even if it exists (overwriting the generated files)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if !pythonName.MatchString(name) || slices.Contains(pythonKeywords, name) {
			return usageError{fmt.Errorf("gen-adapter: %q is not a Python module name (lower case letters, digits, underscores)", name)}
		}
		return genAdapter(cmd, name, *dir, *force, cmd.OutOrStdout())
	}
	return cmd
}

func genAdapter(cmd *cobra.Command, name, dir string, force bool, out io.Writer) error {
	root, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if _, err := os.Stat(root); err == nil && !force {
		return fmt.Errorf("gen-adapter: %s exists (-force writes into it)", root)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	interp, err := pyenv.Find(cmd.Context())
	if err != nil {
		return err
	}
	priv, err := snakepit.FindPrivDir("")
	if err != nil {
		return err
	}
	p := adapterProject{Name: name, Class: className(name)}
	p.TestCommand = fmt.Sprintf("cd %s && PYTHONPATH=%s%c. %s -m pytest -q tests", shellQuote(root), shellQuote(priv),
		os.PathListSeparator, shellQuote(interp.Path))
	for tmplName, target := range adapterFiles {
		raw, err := adapterTemplates.ReadFile("templates/adapter/" + tmplName)
		if err != nil {
			return err
		}
		path, err := render(target, p)
		if err != nil {
			return err
		}
		body, err := render(string(raw), p)
		if err != nil {
			return fmt.Errorf("gen-adapter: %s: %w", tmplName, err)
		}
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "made %s: adapter %s.%s\n", root, name, p.Class)
	fmt.Fprintf(out, "test it:\n  %s\n", p.TestCommand)
	fmt.Fprintf(out, "serve it:\n  cd %s && snakepit run -config snakepit.yaml\n", shellQuote(root))
	return nil
}

func render(text string, p adapterProject) (string, error) {
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// className is the adapter class of a module name: demo_ml → DemoMlAdapter.
func className(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + "Adapter"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:=@%+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
