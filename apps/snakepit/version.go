package snakepit

// Version is this release of snakepit-go (the Go module's tag is
// "v"+Version). The Python bridge it embeds carries the same version
// (snakepit_bridge.__version__, the snakepit-bridge distribution);
// TestVersionsAgree keeps them, pyproject.toml and CHANGELOG.md in step.
const Version = "0.2.0"
