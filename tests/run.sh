#!/usr/bin/env bash
# Runs every EdgeTwin test. As root, installs the Debian packages the tests' real peers need first.
# Ends with one line: "Tests: N passed, N failed[, N skipped]"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests start on loopback (snmpd, pymodbus, socat, mosquitto, mbpoll, protoc, chronyd …); chronyd's libraries
# here, its binary unpacked below.
debian_packages=(snmpd snmp snmptrapd python3-pymodbus python3-pysnmp4 python3-aiosmtpd python3-serial socat mosquitto mosquitto-clients mbpoll protobuf-compiler faketime
  prometheus prometheus-alertmanager debootstrap qemu-user-static ansible ansible-lint systemd
  libcap2 libedit2 libgnutls30 libnettle8 libseccomp2)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    echo "Installing missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "warning: could not install ${missing[*]}; tests that need them will skip and say why"
  else
    echo "warning: not root, so these Debian packages stay missing: ${missing[*]}; tests that need them will skip and say why"
  fi
fi
# Installing a daemon's package starts a system copy of it; the tests run their own on random ports, so stop the copies
# this script just installed (and only those: a machine's own broker or agent keeps running).
for svc in snmpd snmptrapd mosquitto prometheus prometheus-alertmanager; do
  [[ " ${missing[*]} " == *" $svc "* ]] || continue
  command -v systemctl >/dev/null 2>&1 && systemctl stop "$svc" >/dev/null 2>&1
  pkill -x "${svc:0:15}" >/dev/null 2>&1   # the kernel's process name is cut at 15 characters
done
# The clock watcher's tests run a chronyd of their own (-x: it never touches the clock). Unpacked, not installed: the chrony
# package conflicts with systemd-timesyncd, and installing it would replace the machine's own time daemon.
if [[ ! -x /usr/sbin/chronyd ]]; then
  peers=$PWD/.cache/test-peers
  if [[ ! -x $peers/chrony/usr/sbin/chronyd ]]; then
    mkdir -p "$peers" && rm -f "$peers"/chrony_*.deb
    (cd "$peers" && { apt-get download chrony >/dev/null 2>&1 || { [[ $(id -u) == 0 ]] && apt-get update -qq >/dev/null && apt-get download chrony >/dev/null 2>&1; }; }) \
      && dpkg-deb -x "$peers"/chrony_*.deb "$peers/chrony" \
      || echo "warning: could not download Debian's chrony; the chronyd tests will skip and say why"
  fi
  [[ -x $peers/chrony/usr/sbin/chronyd ]] && export EDGETWIN_CHRONYD=$peers/chrony/usr/sbin/chronyd
fi

log=$(mktemp -t edgetwin-tests.XXXXXX)
trap 'rm -f "$log"' EXIT

if ! dotnet build EdgeTwin.sln -c Release -nologo -clp:ErrorsOnly 2>&1 | tee "$log"; then
  echo "Tests: 0 passed, 1 failed (the build failed, see above)"
  exit 1
fi

# Exit code 8 (a project with zero tests) is not a failure by itself; a run with no test at all is, below.
dotnet test --solution EdgeTwin.sln -c Release --no-build --ignore-exit-code 8 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

num() { grep -E "^\s+$1: [0-9]+" "$log" | tail -1 | grep -oE '[0-9]+' || echo 0; }
total=$(num total); failed=$(num failed); passed=$(num succeeded); skipped=$(num skipped)
if [[ $total == 0 ]]; then
  echo "Tests: 0 passed, 1 failed (no test ran; dotnet test exited $status)"
  exit 1
fi
# CI shows only the end of the log: repeat each failed test's name and the first lines of its message here.
if ((failed > 0)); then
  echo "Failed tests:"
  grep -E -A8 '^\s*failed [A-Za-z_]' "$log" | grep -v -E '^\s+at |^--$|^\s*$' | cut -c1-400 | head -60
fi
line="Tests: $passed passed, $failed failed"
((skipped > 0)) && line+=", $skipped skipped"
echo "$line"
if ((status != 0 || failed > 0)); then
  exit 1
fi
exit 0
