#!/usr/bin/env bash
# Installs what building, testing and running entitlement-syncd needs, from Debian 12's packages.
# Idempotent: packages already present are not fetched again.
set -euo pipefail
pkgs=(build-essential cmake pkg-config ninja-build
      libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev
      libpqxx-dev libssl-dev libsystemd-dev
      postgresql postgresql-client openssl curl ca-certificates procps util-linux systemd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
