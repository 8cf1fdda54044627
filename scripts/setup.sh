#!/usr/bin/env bash
# Installs what snakepit-go needs and is missing: Go modules, a Python with grpc,
# protobuf and pytest, protoc with the gRPC Python plugin (for `make proto`), and
# chromium (the status page's test runs in it headless).
# Debian/Ubuntu: apt-get packages. Elsewhere: pip install -r priv/python/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES="python3-grpcio python3-protobuf python3-pytest python3-numpy protobuf-compiler protobuf-compiler-grpc chromium"

have_python() {
  py=$(scripts/find-python.sh 2>/dev/null) && "$py" -c 'import pytest' >/dev/null 2>&1
}

missing_tools() {
  ! have_python || ! command -v protoc >/dev/null || ! command -v grpc_python_plugin >/dev/null ||
    { command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null; }
}

if missing_tools; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian packages: $DEB_PACKAGES"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $DEB_PACKAGES >/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    echo "setup: no apt-get; installing priv/python/requirements.txt with pip"
    python3 -m pip install -r priv/python/requirements.txt
    command -v protoc >/dev/null || echo "setup: protoc not found; install it to run make proto" >&2
  else
    echo "setup: neither apt-get nor python3 found; install Python 3.10+ with grpcio and protobuf" >&2
    exit 1
  fi
fi

go mod download
py=$(scripts/find-python.sh)
echo "setup: python $py ($("$py" -c 'import sys, grpc; print(sys.version.split()[0], "grpc", grpc.__version__)'))"
