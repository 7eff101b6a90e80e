#!/usr/bin/env bash
# Writes a screenshot of the web console to target/console.png (or $1): a real master with
# three fixture workers, one restarted, shown in headless Chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$PWD/target/console.png}"
CONSOLE_SCREENSHOT="$out" cargo test --test console_screenshot -- --ignored --nocapture
echo "screenshot: $out"
