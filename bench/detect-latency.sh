#!/usr/bin/env bash
# Live detection latency with the real agent and server on this host (needs root):
# 20 trials of "a service on a loopback port stops while a client keeps connecting",
# from the first refused connect to the incident visible through the API.
set -euo pipefail
cd "$(dirname "$0")/.."
TAPIO_LATENCY_TRIALS="${TRIALS:-20}" cargo nextest run --release -p tapio-agent \
    --test detect_latency --no-capture 2>&1 | grep -E "detection latency|PASS|FAIL"
