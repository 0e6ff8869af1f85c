#!/usr/bin/env bash
# Builds the EdgeTwin release tarballs: one self-contained single-file `edgetwin` per architecture, with its native
# libraries (ONNX Runtime, SQLite-free) beside it, the device profiles, the models (when present), an example config
# and the systemd unit, plus SHA256SUMS over the tarballs.
#
#   src/EdgeTwin.Agent/deploy/release.sh [-o OUTDIR] [RID...]      (default RIDs: linux-x64 linux-arm64)
#
# The version comes from one place, <Version> in Directory.Build.props; `edgetwin --version` prints it.
# RIDs are published one after another on purpose (a small build machine; each publish is CPU-bound).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
out="$repo/artifacts/release"
while getopts "o:" opt; do
  case "$opt" in
    o) out="$(mkdir -p "$OPTARG" && cd "$OPTARG" && pwd)" ;;
    *) echo "usage: $0 [-o OUTDIR] [RID...]" >&2; exit 64 ;;
  esac
done
shift $((OPTIND - 1))
rids=("$@")
[ ${#rids[@]} -gt 0 ] || rids=(linux-x64 linux-arm64)

version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n1)"
[ -n "$version" ] || { echo "release.sh: no <Version> in $repo/Directory.Build.props" >&2; exit 1; }
mkdir -p "$out"

for rid in "${rids[@]}"; do
  case "$rid" in linux-x64|linux-arm64) ;; *) echo "release.sh: unsupported RID '$rid'" >&2; exit 64 ;; esac
  name="edgetwin-$version-$rid"
  stage="$out/$name"
  rm -rf "$stage" "$out/$name.tar.gz"
  echo "release.sh: publishing $name" >&2
  # Native libraries stay beside the binary (not extracted at start): no writable extraction directory is needed
  # under ProtectSystem=strict, and startup does not pay for the extraction.
  # IL3000 (Assembly.Location is empty in a single file) is reported, not fatal, until SnmpBenchCommand stops using it.
  dotnet publish "$repo/src/EdgeTwin.Agent/EdgeTwin.Agent.csproj" -c Release -r "$rid" --self-contained \
    -p:PublishSingleFile=true -p:WarningsNotAsErrors=IL3000 -p:IncludeNativeLibrariesForSelfExtract=false -p:DebugType=none \
    -p:GenerateDocumentationFile=false -o "$stage" -nologo -v quiet
  rm -f "$stage"/*.pdb "$stage"/*.dbg
  cp -r "$repo/device-profiles" "$stage/device-profiles"
  if [ -d "$repo/models" ]; then cp -r "$repo/models" "$stage/models"; fi
  cp "$repo/device-profiles/examples/small-dc-room.yaml" "$stage/edgetwin.example.yaml"
  cp "$repo/src/EdgeTwin.Agent/deploy/edgetwin.service" "$stage/edgetwin.service"
  printf '%s\n' "$version" > "$stage/VERSION"
  # Reproducible-ish archive: fixed owner and sorted names.
  tar -C "$out" --sort=name --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
  rm -rf "$stage"
done

(cd "$out" && sha256sum edgetwin-"$version"-*.tar.gz > SHA256SUMS)
echo "release.sh: $(cd "$out" && ls -l edgetwin-"$version"-*.tar.gz SHA256SUMS | awk '{print $5, $9}' | tr '\n' ';')" >&2
