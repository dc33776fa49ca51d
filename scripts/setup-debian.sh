#!/usr/bin/env bash
# The Debian packages the test suite needs beyond Node.js and npm, installed only when missing (a second run
# changes nothing and asks for no password):
#   chromium                      the console's browser tests (playwright-core drives it; nothing is downloaded)
#   qemu-user + arm64 runtime     runs the cross-built arm64 agent executable's --version
#     (libc6, libstdc++6, libgcc-s1 -arm64-cross)
#   binutils, binutils-aarch64-linux-gnu   strip the agent executables' Node bases (x64 and arm64)
#   systemd                       systemd-analyze verifies the agent's unit file
# Run it as root, or as a user with sudo (it calls sudo itself, only for apt-get). README: on a fresh Debian
# machine, `scripts/setup-debian.sh && npm install && npm test`; .ci/run runs exactly that.
set -euo pipefail

PACKAGES=()
command -v chromium >/dev/null 2>&1 || PACKAGES+=(chromium)
if ! command -v qemu-aarch64 >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  PACKAGES+=(qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)
fi
command -v systemd-analyze >/dev/null 2>&1 || PACKAGES+=(systemd)
command -v strip >/dev/null 2>&1 || PACKAGES+=(binutils)
command -v aarch64-linux-gnu-strip >/dev/null 2>&1 || PACKAGES+=(binutils-aarch64-linux-gnu)

if [ ${#PACKAGES[@]} -eq 0 ]; then
  echo "setup-debian: every package the tests need is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-debian: this script installs with apt-get (Debian); install these another way: ${PACKAGES[*]}" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  AS_ROOT=()
elif command -v sudo >/dev/null 2>&1; then
  AS_ROOT=(sudo)
else
  echo "setup-debian: run as root, or install sudo, to install: ${PACKAGES[*]}" >&2
  exit 1
fi
echo "setup-debian: installing ${PACKAGES[*]}"
"${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}"
