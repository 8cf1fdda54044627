#!/usr/bin/env bash
# Runs every fuzz target for a while each (default 3s; `make fuzz` 60s).
# Seed corpora are the f.Add calls and testdata/fuzz/<Target>/ (committed:
# a failure the fuzzer finds is written there and replays in `go test`).
#
#   scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-3s}
targets=(
  "./internal/jsonany FuzzPackArgs"      # parameter encoding
  "./internal/jsonany FuzzUnpack"        # result decoding
  "./internal/sperr FuzzFromPython"      # error-payload parsing
  "./actors/worker FuzzParseReady"       # ready-file parsing
  "./apps/snakepit FuzzConfig"           # config parsing and validation
  "./actors/registry/cleanup FuzzDecideRogue" # rogue-process matching
)
for t in "${targets[@]}"; do
  read -r pkg name _ <<<"$t"
  echo "fuzz $name ($pkg) for $fuzztime"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" | grep -v '^fuzz: elapsed' || exit 1
done
