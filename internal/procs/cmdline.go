package procs

import (
	"path/filepath"
	"strings"
)

// FlagValue returns the value of flag in argv, accepting both "--flag value"
// and "--flag=value". flag is spelled as on the command line ("--run-id");
// a flag given without leading dashes ("run-id") is looked up as "--run-id".
// The first occurrence wins. ok is false when the flag is absent or when it
// is the last element with no value after it.
func FlagValue(argv []string, flag string) (string, bool) {
	if flag == "" {
		return "", false
	}
	if !strings.HasPrefix(flag, "-") {
		flag = "--" + flag
	}
	for i, arg := range argv {
		if arg == flag {
			if i+1 < len(argv) {
				return argv[i+1], true
			}
			return "", false
		}
		if value, found := strings.CutPrefix(arg, flag+"="); found {
			return value, true
		}
	}
	return "", false
}

// HasScript reports whether any element of argv has a base name
// (filepath.Base) equal to the base name of one of scripts. Empty strings
// match nothing.
func HasScript(argv []string, scripts []string) bool {
	for _, script := range scripts {
		if script == "" {
			continue
		}
		want := filepath.Base(script)
		for _, arg := range argv {
			if arg != "" && filepath.Base(arg) == want {
				return true
			}
		}
	}
	return false
}
