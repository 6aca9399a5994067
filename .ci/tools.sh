#!/usr/bin/env bash
# Developer tools the tests use, installed into the venv's bin/ when missing (idempotent):
#   grpcurl   the gRPC CLI operators use; a test lists and calls the service through reflection
# Built from source with Go through the Go module proxy (no binary downloads needed).
set -euo pipefail
BIN="${1:-.venv/bin}"
GRPCURL_VERSION=v1.9.4

if [ -x "$BIN/grpcurl" ]; then
  exit 0
fi
GO=$(command -v go || true)
[ -n "$GO" ] || { [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go; }
if [ -z "$GO" ]; then
  echo "grpcurl needs Go >= 1.21 to build (https://go.dev/dl or /usr/local/go)" >&2
  exit 1
fi
echo "building grpcurl $GRPCURL_VERSION with $($GO version)"
GOBIN="$(cd "$BIN" && pwd)" GOFLAGS=-mod=mod "$GO" install \
  "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
