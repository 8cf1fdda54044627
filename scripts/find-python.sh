#!/usr/bin/env bash
# Prints the path of a Python 3.10+ interpreter that can import grpc and google.protobuf.
# Order: $SNAKEPIT_PYTHON (an error if it cannot), python3 on PATH, /usr/bin/python3.
# (internal/pyenv implements the same rule for the Go host.)
set -uo pipefail
probe() { "$1" -c 'import sys, grpc, google.protobuf; assert sys.version_info >= (3, 10)' >/dev/null 2>&1; }

if [ -n "${SNAKEPIT_PYTHON:-}" ]; then
  if probe "$SNAKEPIT_PYTHON"; then echo "$SNAKEPIT_PYTHON"; exit 0; fi
  echo "find-python: SNAKEPIT_PYTHON=$SNAKEPIT_PYTHON cannot import grpc and google.protobuf" >&2
  exit 1
fi
for candidate in "$(command -v python3 2>/dev/null)" /usr/bin/python3; do
  [ -n "$candidate" ] && [ -x "$candidate" ] && probe "$candidate" && { echo "$candidate"; exit 0; }
done
echo "find-python: no python3 with grpc and protobuf found (run: make setup)" >&2
exit 1
