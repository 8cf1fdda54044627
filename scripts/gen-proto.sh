#!/usr/bin/env bash
# Regenerates the Go and Python code for proto/snakepit_bridge.proto and the Go
# code for proto/snakepit_pool.proto (the pool actor's messages).
#
#   scripts/gen-proto.sh            write into the repository (what `make proto` does)
#   scripts/gen-proto.sh OUT_ROOT   write the same files under OUT_ROOT instead
#                                   (the staleness test compares them with the committed ones)
#
# Needs: protoc (Debian protobuf-compiler), grpc_python_plugin (Debian
# protobuf-compiler-grpc), and Go; protoc-gen-go and protoc-gen-go-grpc are built
# from the versions pinned as tools in go.mod, so output is reproducible.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
cd "$root"

for bin in protoc grpc_python_plugin; do
  command -v "$bin" >/dev/null || { echo "gen-proto: $bin not found (make setup installs it)" >&2; exit 2; }
done

plugins=$(mktemp -d)
trap 'rm -rf "$plugins"' EXIT
go build -o "$plugins/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$plugins/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc

gen_go="$out/proto/bridgepb"
mkdir -p "$out/proto/poolpb" "$out/proto/controlpb"
gen_py="$out/priv/python/snakepit_bridge"
mkdir -p "$gen_go" "$gen_py"

protoc -I proto \
  --plugin=protoc-gen-go="$plugins/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$plugins/protoc-gen-go-grpc" \
  --go_out="$out" --go_opt=module=github.com/snakepit-go/snakepit \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/snakepit-go/snakepit \
  snakepit_bridge.proto snakepit_pool.proto snakepit_control.proto

protoc -I proto \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  --python_out="$gen_py" --pyi_out="$gen_py" --grpc_python_out="$gen_py" \
  snakepit_bridge.proto snakepit_control.proto

# The generated gRPC module imports its message module as a top-level module;
# inside the snakepit_bridge package it must be a relative import.
sed -i 's/^import snakepit_bridge_pb2 as /from . import snakepit_bridge_pb2 as /' \
  "$gen_py/snakepit_bridge_pb2_grpc.py"
sed -i 's/^import snakepit_control_pb2 as /from . import snakepit_control_pb2 as /' \
  "$gen_py/snakepit_control_pb2_grpc.py"
