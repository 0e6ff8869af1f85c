#!/usr/bin/env bash
# Makes (once) a cached Debian 12 root tarball for the deployment tests and prints its path.
#
#   debian-root.sh amd64|arm64 CACHE_DIR
#
# amd64:         `debootstrap --variant=minbase` with what Ansible needs inside a chroot (python3) and what the agent
#                needs (libicu72), plus systemd so `systemctl enable` works offline in the chroot.
# arm64:         `debootstrap --foreign --variant=minbase` with the same packages plus libssl3, the second stage run
#                through qemu-aarch64-static via binfmt_misc (registered by binfmt-aarch64.sh when missing). One root
#                serves the agent alone under qemu and the Ansible role under qemu: a second arm64 root would cost a
#                second emulated debootstrap (25-35 min) on a cold CI machine.
# The tarball is keyed by arch and package list; a partial build never replaces a good one (temp dir + rename).
set -euo pipefail
arch="$1"
cache="$2"
mirror="${EDGETWIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
case "$arch" in
  amd64) include="python3,libicu72,systemd,ca-certificates" ;;
  arm64) include="python3,libicu72,libssl3,systemd,ca-certificates" ;;  # libssl3: System.Net.Security (MQTT over TLS)
  *) echo "debian-root.sh: unsupported arch $arch" >&2; exit 64 ;;
esac
key="bookworm-$arch-minbase-$(printf '%s' "$include" | sha256sum | cut -c1-8)"
out="$cache/$key.tar"
mkdir -p "$cache"
if [ -s "$out" ]; then echo "$out"; exit 0; fi

# One builder at a time per tarball (parallel test classes, or two CI jobs sharing the cache).
exec 9>"$out.lock"
flock 9
if [ -s "$out" ]; then echo "$out"; exit 0; fi

work="$(mktemp -d "$cache/.build-$arch.XXXXXX")"
trap 'umount -R "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
root="$work/root"
if [ "$arch" = amd64 ]; then
  debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >&2
else
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$include" bookworm "$root" "$mirror" >&2
  "$(dirname "$0")/binfmt-aarch64.sh" >&2
  # Second stage inside the root through qemu (the binfmt entry has the F flag: no interpreter copy needed).
  chroot "$root" /debootstrap/debootstrap --second-stage >&2
fi
apt_clean() { rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*; }
apt_clean
tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
