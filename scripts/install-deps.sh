#!/bin/sh
# Installs the Debian packages named on the command line with apt-get, through sudo unless
# already root (a container usually has no sudo). Used by the README's one-command main job
# and by scripts/test.sh.
set -eu
[ "$#" -gt 0 ] || exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
# A fresh machine or container has no package lists yet.
$SUDO apt-get update -qq
# `env` because sudo drops the caller's environment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
