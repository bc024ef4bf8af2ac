#!/usr/bin/env bash
# Rewrite data/ from the deterministic generator; `git diff --stat data/` must then be empty.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf data
phase8 demo-data --out data --seed 8
