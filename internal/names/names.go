// Package names says which names may travel on a worker's command line and
// in file names: pool names, worker ids, instance names and tokens. Like
// upstream Snakepit's sanitising, the safe alphabet is [A-Za-z0-9_-];
// unlike it, an unsafe name is refused rather than silently changed.
package names

// Valid reports whether s is non-empty, made only of letters, digits, '-'
// and '_', and does not start with '-' (it would read as a flag on a
// command line).
func Valid(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
