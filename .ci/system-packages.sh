#!/usr/bin/env bash
# Debian packages the tests and `learn up` need, installed only when missing (idempotent).
#   postgresql            server binaries for the throwaway test clusters (initdb, pg_ctl)
#   maven, openjdk-17     OpenSearch and Apache Tika from Maven Central jars
#   tesseract-ocr         OCR of image-only PDFs
#   docker-compose        `docker-compose config` validates docker-compose.yml without an engine
#   util-linux            setpriv/runuser (OpenSearch and initdb refuse to run as root)
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v mvn >/dev/null || missing+=(maven)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3 python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
