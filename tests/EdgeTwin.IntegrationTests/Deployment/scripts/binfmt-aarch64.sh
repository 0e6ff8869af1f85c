#!/usr/bin/env bash
# Makes sure the kernel runs aarch64 ELF files through qemu-aarch64-static (Debian qemu-user-static), so a chroot into
# an arm64 root works. In a container binfmt_misc is often not mounted; mounting it needs CAP_SYS_ADMIN (root in CI).
# The entry comes from qemu-user-static's /usr/lib/binfmt.d/qemu-aarch64.conf (flags OPF: F = the interpreter is
# opened now, so it need not exist inside the chroot).
set -euo pipefail
bm=/proc/sys/fs/binfmt_misc
[ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm"
if [ -e "$bm/qemu-aarch64" ] && grep -q '^enabled' "$bm/qemu-aarch64"; then exit 0; fi
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -r "$conf" ] || { echo "binfmt-aarch64.sh: $conf missing (install qemu-user-static)" >&2; exit 3; }
interp="$(cut -d: -f7 < "$conf")"
[ -x "$interp" ] || { echo "binfmt-aarch64.sh: interpreter $interp missing" >&2; exit 3; }
grep -v '^#' "$conf" | head -n1 > "$bm/register"
