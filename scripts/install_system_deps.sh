#!/usr/bin/env bash
# Install the Debian packages the project needs: real offline data (Fashion-MNIST), the
# typefaces the `glyphs` dataset renders, and Chromium for the book's browser test.
# Where apt is missing or we are not root, say what is needed and carry on: the Python side
# still installs, and the data layer's errors name the same packages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t pkgs < <(grep -v '^#' "$here/system-packages.txt" | grep -v '^$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: these system packages are missing and cannot be installed here (need apt as root):" >&2
  echo "  ${missing[*]}" >&2
fi
