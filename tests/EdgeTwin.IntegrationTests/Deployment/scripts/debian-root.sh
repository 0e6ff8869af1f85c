#!/usr/bin/env bash
# Makes (once) a cached Debian root tarball for the deployment tests and prints its path.
#
#   debian-root.sh amd64|arm64 CACHE_DIR [bookworm|trixie]     (suite: bookworm when not given)
#
# amd64:         `debootstrap --variant=minbase` with what Ansible needs inside a chroot (python3), plus systemd so
#                `systemctl enable` works offline in the chroot (and its own systemd-analyze can verify the unit).
# arm64:         `debootstrap --foreign --variant=minbase` with the same packages plus libssl3, the second stage run
#                through qemu-aarch64-static via binfmt_misc (registered by binfmt-aarch64.sh when missing). One root
#                serves the agent alone under qemu and the Ansible role under qemu: a second arm64 root would cost a
#                second emulated debootstrap (25-35 min) on a cold CI machine.
# bookworm (Debian 12) keeps libicu72 in its list (its tarball, keyed by the list, stays the cached one); trixie
# (Debian 13) has no ICU at all, which proves the agent (InvariantGlobalization) needs none, and libssl3t64, trixie's
# name for libssl.so.3 after the 64-bit time_t transition (System.Net.Security: MQTT over TLS).
# The tarball is keyed by suite, arch and package list; a partial build never replaces a good one (temp dir + rename).
set -euo pipefail
arch="$1"
cache="$2"
suite="${3:-bookworm}"
mirror="${EDGETWIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
case "$suite/$arch" in
  bookworm/amd64) include="python3,libicu72,systemd,ca-certificates" ;;
  bookworm/arm64) include="python3,libicu72,libssl3,systemd,ca-certificates" ;;  # libssl3: System.Net.Security (MQTT over TLS)
  trixie/amd64) include="python3,libssl3t64,systemd,udev,ca-certificates" ;;
  trixie/arm64) include="python3,libssl3t64,systemd,udev,ca-certificates" ;;
  *) echo "debian-root.sh: unsupported suite/arch $suite/$arch (bookworm or trixie; amd64 or arm64)" >&2; exit 64 ;;
esac
key="$suite-$arch-minbase-$(printf '%s' "$include" | sha256sum | cut -c1-8)"
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
  debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >&2
else
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$include" "$suite" "$root" "$mirror" >&2
  "$(dirname "$0")/binfmt-aarch64.sh" >&2
  # Second stage inside the root through qemu (the binfmt entry has the F flag: no interpreter copy needed).
  chroot "$root" /debootstrap/debootstrap --second-stage >&2
fi
apt_clean() { rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*; }
apt_clean
tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
