#!/usr/bin/env bash
# Measures a release tarball the way the deploy README reports it:
#   size of the tarball and unpacked, startup time to READY=1 of `edgetwin run` on the example config (RUNS=3 runs,
#   via ansible/roles/edgetwin/files/edgetwin-ready exec), and the RSS of `edgetwin demo` after 60 s.
#
#   src/EdgeTwin.Agent/deploy/measure.sh TARBALL [ROOT]
#
# ROOT: an arm64 Debian root (tests' cache) to run a linux-arm64 tarball in under qemu-aarch64-static — with the
# emulation-only settings of the tests (ARM /proc/cpuinfo bind-mounted, DOTNET_EnableWriteXorExecute=0). Figures
# under qemu are indicative only (JIT and everything else is emulated; RSS includes qemu's own memory).
set -euo pipefail
tarball="$(readlink -f "$1")"
root="${2:-}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
ready="$repo/ansible/roles/edgetwin/files/edgetwin-ready"
cpuinfo="$repo/tests/EdgeTwin.IntegrationTests/Deployment/fixtures/cpuinfo-arm64"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -n "$root" ]; then
  app="$root/opt/edgetwin-measure"; rm -rf "$app"; mkdir -p "$app"; appin=/opt/edgetwin-measure
  run() { unshare -m --propagation private -- /bin/sh -c 'mount -t proc proc "$0/proc" && mount --bind "$1" "$0/proc/cpuinfo" && mount --rbind /dev "$0/dev" && r="$0" && shift 1 && exec chroot "$r" /usr/bin/env DOTNET_EnableWriteXorExecute=0 HOME=/root "$@"' "$root" "$cpuinfo" "$@"; }
else
  app="$work/app"; mkdir -p "$app"; appin="$app"
  run() { "$@"; }
fi
tar -xzf "$tarball" -C "$app" --strip-components=1
mkdir -p "$app/secrets" && cp "$app/device-profiles/examples/secrets/ops-auth" "$app/secrets/"
# The example config's outbox lives in /var/lib/edgetwin; measure with a throw-away one.
sed "s#/var/lib/edgetwin/outbox.db#$appin/outbox.db#" "$app/edgetwin.example.yaml" > "$app/measure.yaml"

echo "tarball: $(stat -c %s "$tarball") bytes; unpacked: $(du -sb "$app" | cut -f1) bytes; binary: $(stat -c %s "$app/edgetwin") bytes"
for lib in "$app"/*.so; do echo "  $(basename "$lib"): $(stat -c %s "$lib") bytes"; done
for i in $(seq "${RUNS:-3}"); do
  rm -f "$app/outbox.db"*
  if [ -n "$root" ]; then
    # The readiness check runs on the host; the agent runs in the root through qemu.
    # Its notify socket is made under the root's /tmp (TMPDIR) and passed to the agent with the root prefix removed.
    TMPDIR="$root/tmp" "$ready" exec --timeout 300 --settle 0 -- unshare -m --propagation private -- /bin/sh -c 'mount -t proc proc "$0/proc" && mount --bind "$1" "$0/proc/cpuinfo" && mount --rbind /dev "$0/dev" && r="$0" && shift 1 && exec chroot "$r" /usr/bin/env DOTNET_EnableWriteXorExecute=0 NOTIFY_SOCKET="${NOTIFY_SOCKET#$r}" HOME=/root "$@"' "$root" "$cpuinfo" "$appin/edgetwin" run --config "$appin/measure.yaml" --profiles-dir "$appin/device-profiles" 2>&1 | tail -n1 || true
  else
    "$ready" exec --timeout 120 --settle 0 -- "$appin/edgetwin" run --config "$appin/measure.yaml" 2>&1 | tail -n1
  fi
done
run "$appin/edgetwin" demo --duration 75 --profiles-dir "$appin/device-profiles" > "$work/demo.log" 2>&1 &
sleep 60
pid="$(pgrep -n -f "$appin/edgetwin demo" || true)"
if [ -n "$pid" ]; then echo "demo RSS after 60 s: $(grep VmRSS /proc/"$pid"/status) (pid $pid: $(tr '\0' ' ' < /proc/"$pid"/cmdline | cut -c1-80))"; fi
wait || true
tail -n 2 "$work/demo.log"
