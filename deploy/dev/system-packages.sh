#!/bin/sh
# The Debian packages `make test` needs beyond Python: chromium (tests/e2e drive it through
# Playwright, never `playwright install`), nginx (tests/scale run it as a process of their
# own) and nodejs with npm (`npm ci` installs tests/e2e's axe-core). Installed with apt-get when
# missing and run as root; otherwise the exact command is printed and the target fails.
# `make test` and `.ci/run` both call this; `make bench` calls it with `bench`, which adds wrk
# (the HTTP load generator of tests/bench).
set -eu
target="make test"
missing=""
if [ "${1:-}" = "bench" ]; then
  target="make bench"
  [ -x /usr/bin/wrk ] || missing="$missing wrk"
fi
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/sbin/nginx ] || missing="$missing nginx"
[ -x /usr/bin/npm ] || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "$target needs the Debian packages:$missing" >&2
  echo "install them with:  sudo apt-get install -y$missing   (then run $target again)" >&2
  exit 1
fi
echo "installing the Debian packages:$missing"
apt-get update -qq
# shellcheck disable=SC2086 (one word per package)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
