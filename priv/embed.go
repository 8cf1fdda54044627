// Package priv carries the Python bridge (priv/python) inside the Go
// module, so a program that imports snakepit needs no checkout of this
// repository: when no PrivDir or Script is configured, the App writes this
// copy to a versioned cache directory and runs its workers from there.
package priv

import "embed"

// Python is the Python bridge: the worker servers and the snakepit_bridge
// package (without its tests and examples), rooted at "python".
// TestEmbeddedBridgeIsComplete fails when a tracked file is missing here.
//
//go:embed python/grpc_server.py python/grpc_server_threaded.py python/requirements.txt
//go:embed python/snakepit_bridge_pb2.py python/snakepit_bridge_pb2_grpc.py
//go:embed python/snakepit_bridge/*.py python/snakepit_bridge/*.pyi
//go:embed python/snakepit_bridge/adapters/*.py python/snakepit_bridge/adapters/showcase/*.py python/snakepit_bridge/adapters/concurrent/*.py
//go:embed python/snakepit_bridge/launch/*.py python/snakepit_bridge/py.typed python/pyproject.toml
var Python embed.FS
