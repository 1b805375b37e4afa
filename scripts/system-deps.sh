#!/usr/bin/env bash
# Installs the Debian packages the tests need, when running as root and they are missing.
# Not root: nothing is installed; tests that need a missing component skip with a loud reason
# (or fail when MSUS_REQUIRE_ALL=1).
set -euo pipefail
# command -> Debian package
declare -A need=(
  [chromium]=chromium
  [pg_ctlcluster]=postgresql
  [dsrdump]=dcmtk
  [Orthanc]=orthanc
  [openssl]=openssl
)
# Packages with no command of their own (plugins, fonts for the browser), checked with dpkg.
packages=(orthanc-dicomweb fonts-liberation fonts-dejavu-core)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "msus: not root, not installing Debian packages: ${missing[*]} (tests needing them will skip)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "msus: no apt-get here; cannot install ${missing[*]}" >&2
  exit 0
fi
echo "msus: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
