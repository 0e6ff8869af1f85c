#!/usr/bin/env bash
# Builds the EdgeTwin release tarballs: one self-contained single-file `edgetwin` per architecture, with its native
# libraries (ONNX Runtime, SQLite-free) beside it, the device profiles, the models (when present), an example config
# and the systemd unit, plus SHA256SUMS over the tarballs.
#
#   src/EdgeTwin.Agent/deploy/release.sh [-o OUTDIR] [-s] [RID...]      (default RIDs: linux-x64 linux-arm64)
#
# -s (if stale): skip a RID whose tarball in OUTDIR was built from the same sources (SOURCE_STAMP-<rid>: a hash of the
#    tracked and untracked files under src/, device-profiles/, models/ and the build props); the tests use this to
#    build each RID once and share it across test classes and runs.
#
# The version comes from one place, <Version> in Directory.Build.props; `edgetwin --version` prints it.
# RIDs are published one after another on purpose (a small build machine; each publish is CPU-bound).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
out="$repo/artifacts/release"
if_stale=0
while getopts "o:s" opt; do
  case "$opt" in
    o) out="$(mkdir -p "$OPTARG" && cd "$OPTARG" && pwd)" ;;
    s) if_stale=1 ;;
    *) echo "usage: $0 [-o OUTDIR] [-s] [RID...]" >&2; exit 64 ;;
  esac
done
shift $((OPTIND - 1))
rids=("$@")
[ ${#rids[@]} -gt 0 ] || rids=(linux-x64 linux-arm64)

version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n1)"
[ -n "$version" ] || { echo "release.sh: no <Version> in $repo/Directory.Build.props" >&2; exit 1; }
mkdir -p "$out"

# The files a release is built from (all of them go into the build copy below).
inputs() {
  (cd "$repo" && git ls-files -co --exclude-standard -- src device-profiles models Directory.Build.props \
    Directory.Packages.props global.json | grep -Ev '(^|/)(bin|obj)/' | LC_ALL=C sort)
}
# One release build at a time per output directory (parallel test classes, two CI jobs sharing a cache). Taken before
# the stamp: a run that waited here judges the sources as they are when it may build, not as they were while another
# run built (a stamp taken before the wait differed from the fresh tarball's and rebuilt it, deleting it under the
# test that had just made it: "release.sh made no …linux-x64.tar.gz").
exec 9>"$out/.lock"
flock 9

# Its stamp: any change (committed or not) makes a new one, except in the deploy scripts other than this one (which
# decides what the tarball holds) and Markdown outside device-profiles/ (the build embeds device-profiles/, README included).
stamp="$(cd "$repo" && inputs | grep -Ev '^src/.*\.md$|^src/EdgeTwin\.Agent/deploy/[^/]*\.sh$' | xargs -d '\n' sha256sum | sha256sum | cut -c1-16)"
stamp="$(printf '%s\n' "$stamp" "$(sha256sum < "$repo/src/EdgeTwin.Agent/deploy/release.sh")" | sha256sum | cut -c1-16)"

# Publish from a copy of the sources under OUTDIR, not the working tree: a test run building the tests in the same
# tree at the same time (or an IDE) must not share obj/ with a RID-specific publish. The copy keeps its obj/ between
# runs and file times are preserved, so a rebuild is incremental.
tree="$out/.build-tree"
sync_tree() {
  mkdir -p "$tree"
  find "$tree" -mindepth 1 \( -name bin -o -name obj \) -prune -o -type f -print0 | xargs -0 -r rm -f
  (cd "$repo" && inputs | tar -cf - --no-recursion -T -) | tar -C "$tree" -xf -
}
synced=0
# The copy has no .git: the commit goes in explicitly (`edgetwin --version` prints <Version>+<commit>).
revision="$(cd "$repo" && git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

for rid in "${rids[@]}"; do
  case "$rid" in linux-x64|linux-arm64) ;; *) echo "release.sh: unsupported RID '$rid'" >&2; exit 64 ;; esac
  name="edgetwin-$version-$rid"
  stage="$out/$name"
  if [ "$if_stale" = 1 ] && [ -s "$out/$name.tar.gz" ] && [ "$(cat "$out/SOURCE_STAMP-$rid" 2>/dev/null)" = "$stamp" ]; then
    echo "release.sh: $name.tar.gz is up to date (stamp $stamp)" >&2
    continue
  fi
  # The previous tarball stays until the new one replaces it (renamed over it): a reader of the shared cache never finds none.
  rm -rf "$stage" "$out/$name.tar.gz.part"
  echo "release.sh: publishing $name" >&2
  # Native libraries stay beside the binary (not extracted at start): no writable extraction directory is needed
  # under ProtectSystem=strict, and startup does not pay for the extraction.
  # IL3000 (Assembly.Location is empty in a single file) is reported, not fatal, until SnmpBenchCommand stops using it.
  [ "$synced" = 1 ] || { sync_tree; synced=1; }
  dotnet publish "$tree/src/EdgeTwin.Agent/EdgeTwin.Agent.csproj" -c Release -r "$rid" --self-contained \
    -p:PublishSingleFile=true -p:WarningsNotAsErrors=IL3000 -p:IncludeNativeLibrariesForSelfExtract=false -p:DebugType=none \
    -p:GenerateDocumentationFile=false -p:EnableSourceLink=false -p:EnableSourceControlManagerQueries=false \
    -p:SourceRevisionId="$revision" -o "$stage" -nologo -v quiet
  rm -f "$stage"/*.pdb "$stage"/*.dbg
  # ONNX Runtime's native library must sit beside the single file, for the right architecture.
  [ -f "$stage/libonnxruntime.so" ] || { echo "release.sh: libonnxruntime.so missing from the $rid publish" >&2; exit 1; }
  # Confluent.Kafka ships librdkafka builds for glibc, musl (alpine) and, for x64, CentOS 8. The x64 glibc build needs
  # cyrus libsasl2.so.3 (for GSSAPI only), which a minimal Debian (debootstrap minbase, no libsasl2-2) lacks: it did not
  # load there and the Kafka uplink was dead. Confluent.Kafka falls back to centos8-librdkafka.so (no libsasl2; PLAIN,
  # SCRAM, OAUTHBEARER, TLS and every compression built in), so the x64 tarball keeps both. The musl build never loads.
  rm -f "$stage"/alpine-librdkafka.so "$stage"/centos7-librdkafka.so
  if [ "$rid" = linux-x64 ] && [ ! -f "$stage/centos8-librdkafka.so" ]; then
    echo "release.sh: centos8-librdkafka.so missing from the $rid publish (the librdkafka for gateways without libsasl2)" >&2; exit 1
  fi
  # The publish may already hold copies of these directories; cp -r into an existing one nested them
  # (device-profiles/device-profiles/…).
  rm -rf "$stage/device-profiles" "$stage/models"
  cp -r "$repo/device-profiles" "$stage/device-profiles"
  # Models with their manifest, without the training scripts.
  if [ -d "$repo/models" ]; then
    cp -r "$repo/models" "$stage/models"
    find "$stage/models" \( -name '*.py' -o -name '__pycache__' -o -name '*.ipynb' \) -prune -exec rm -rf {} +
  fi
  # The example config names a secret file beside it (secrets/ops-auth, as on a gateway's /etc/edgetwin): it ships
  # there too, so `edgetwin check --config edgetwin.example.yaml` passes on the tarball as unpacked.
  cp "$repo/device-profiles/examples/small-dc-room.yaml" "$stage/edgetwin.example.yaml"
  rm -rf "$stage/secrets"
  cp -r "$repo/device-profiles/examples/secrets" "$stage/secrets"
  cp "$repo/src/EdgeTwin.Agent/deploy/edgetwin.service" "$stage/edgetwin.service"
  printf '%s\n' "$version" > "$stage/VERSION"
  # The agent reads models/ beside the binary by default; ship an empty one when the repository has no models yet.
  mkdir -p "$stage/models"
  # Reproducible-ish archive: fixed owner and sorted names.
  tar -C "$out" --sort=name --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz.part" "$name"
  mv -f "$out/$name.tar.gz.part" "$out/$name.tar.gz"
  rm -rf "$stage"
  printf '%s\n' "$stamp" > "$out/SOURCE_STAMP-$rid"
done

# SHA256SUMS covers every tarball in OUTDIR, not only this version's: the previous release, still beside the new one,
# must stay deployable (a rollback with `edgetwin_version=<previous>` checks its tarball against this file). Entries of
# tarballs still present are kept (an earlier version is not rehashed), this run's are replaced, entries whose tarball
# is gone are dropped; sorted by name. Written to a temp file and renamed: a reader never sees half a list.
(
  cd "$out"
  declare -A sums=()
  if [ -f SHA256SUMS ]; then
    while read -r sum file; do
      file="${file#\*}"
      case "$file" in edgetwin-"$version"-*.tar.gz) continue ;; esac
      [ -f "$file" ] && sums["$file"]="$sum"
    done < SHA256SUMS
  fi
  for tarball in edgetwin-*.tar.gz; do
    [ -f "$tarball" ] || continue
    case "$tarball" in
      edgetwin-"$version"-*.tar.gz) sums["$tarball"]="$(sha256sum "$tarball" | cut -d' ' -f1)" ;;
      *) [ -n "${sums[$tarball]:-}" ] || sums["$tarball"]="$(sha256sum "$tarball" | cut -d' ' -f1)" ;;
    esac
  done
  for tarball in "${!sums[@]}"; do printf '%s  %s\n' "${sums[$tarball]}" "$tarball"; done | LC_ALL=C sort -k2 > SHA256SUMS.tmp
  mv -f SHA256SUMS.tmp SHA256SUMS
)
echo "release.sh: $(cd "$out" && ls -l edgetwin-"$version"-*.tar.gz SHA256SUMS | awk '{print $5, $9}' | tr '\n' ';')" >&2
