#!/usr/bin/env bash
# Install the Debian/Ubuntu packages the project can use: real offline data (Fashion-MNIST),
# the typefaces the `glyphs` dataset renders, and (tests only) Chromium for the book's browser
# test. Each package is installed on its own, so a name this distribution lacks (Ubuntu has
# no `chromium` deb) or a failed install never stops `make install` / `make reproduce`: this
# script always exits 0 and lists what is still missing. Without apt or root it only reports.
# Where the pinned typefaces cannot come from the system, survey_lib fetches the pinned Debian
# packages' font files into a user cache itself (`python -m survey_lib.data.font_packages
# fetch`), each file checked against a committed SHA-256.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# "name" or "name  # test-only" per line; comments and blank lines ignored
mapfile -t lines < <(grep -v '^\s*#' "$here/system-packages.txt" | grep -v '^\s*$')
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for line in "${lines[@]}"; do
  p=${line%%#*}; p=${p//[[:space:]]/}
  [ -n "$p" ] && ! installed "$p" && missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "warning: cannot install system packages here (need apt-get as root); missing: ${missing[*]}" >&2
  echo "  the glyph typefaces are fetched into a user cache on first use instead; the other" >&2
  echo "  packages are optional (Fashion-MNIST downloads via torchvision; Chromium is test-only)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "warning: apt-get update failed; trying the cached package lists" >&2
failed=()
for p in "${missing[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then
    echo "installing $p"
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null || failed+=("$p")
  else
    failed+=("$p (no such package here)")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "warning: not installed: ${failed[*]}" >&2
  grep -E '#\s*test-only' "$here/system-packages.txt" | sed 's/#.*//' | tr -d ' ' | \
    tr '\n' ' ' | sed 's/^/  test-only (never needed by make reproduce): /' >&2; echo >&2
fi
exit 0
