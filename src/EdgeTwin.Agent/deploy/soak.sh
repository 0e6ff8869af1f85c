#!/usr/bin/env bash
# Long-run soak of `edgetwin run` against a simulated site, as the deploy README's "Long run" section reports it.
#
#   src/EdgeTwin.Agent/deploy/soak.sh [MINUTES] [OUT_DIR]       (default 60 minutes, a new temp dir)
#
# Starts `edgetwin sim` (40 racks with inlet probes in 2 rooms, 4 cooling units, 6 machines, a 6-station line; scheduled
# faults), a mosquitto of its own on a free loopback port, and the agent (uplink to that broker, the datacenter alert
# rules, Prometheus metrics on loopback). Stops the broker twice for OUTAGE_S seconds (default 300) at 25 % and 55 % of the
# run. Every SAMPLE_S seconds (default 30) appends a row to OUT_DIR/soak.csv: RSS, GC heap, gen2 collections, threads,
# fds, CPU seconds, outbox/alerts file sizes (data file and LiteDB log; alerts.db, alerts-log.db and alerts.journal), the
# whole state dir, log lines since the last row, broker up. Needs mosquitto, curl, python3-yaml and a Release build.
# The agent inherits the environment (e.g. MALLOC_ARENA_MAX=2 to compare). Not part of any test suite: it runs as long as it is told to.
set -euo pipefail
minutes="${1:-60}"
out="${2:-$(mktemp -d /tmp/edgetwin-soak.XXXXXX)}"
sample_s="${SAMPLE_S:-30}"; outage_s="${OUTAGE_S:-300}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$repo/src/EdgeTwin.Agent/bin/Release/net10.0/edgetwin.dll"
mosq="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
mkdir -p "$out/state"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtt_port="$(free_port)"; prom_port="$(free_port)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null || true; }
trap cleanup EXIT

total=$((minutes * 60 + 120))
dotnet "$bin" sim --racks 40 --cooling-units 4 --machines 6 --line --line-stations 6 --rack-probes apc-uio-probe --rooms 2 \
  --config-out "$out/sim.yaml" --duration "$total" \
  --fault cooling-stop:crac1@600s --fault cooling-restore:crac1@1200s \
  --fault device-dark:pdu-b03-a@900s --fault device-ok:pdu-b03-a@1500s \
  --fault device-slow:meter1:800ms@1800s --fault device-ok:meter1@2400s \
  --fault machine-stop:m2@2100s --fault machine-start:m2@2700s \
  > "$out/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do [ -s "$out/sim.yaml" ] && grep -q '^models:' "$out/sim.yaml" && break; sleep 1; done

# The sim's config plus the uplink, the shipped datacenter rules (sinks that need hardware or other hosts left out) and metrics.
/usr/bin/python3 - "$out" "$mqtt_port" "$prom_port" "$repo" "$(free_port)" <<'EOF'
import sys, yaml
out, mqtt, prom, repo, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
cfg = yaml.safe_load(open(f"{out}/sim.yaml"))
alerts = yaml.safe_load(open(f"{repo}/device-profiles/examples/alert-rules/datacenter.yaml"))["alerts"]
# The GPIO panel on the simulated chip, the MQTT sink on the soak's broker, the webhook on a closed port (a sink that stays
# down for the whole run); the syslog sink and the GPIO inputs need the host's /dev/log and pins.
sinks = []
for s in alerts.get("sinks", []):
    if s["type"] == "gpio":
        s["chip"] = "simulated"
        for o in s.get("outputs", []):   # PyYAML reads on/off as booleans
            for k, v in o.items():
                if isinstance(v, bool) and k != "silence_on_ack": o[k] = "on" if v else "off"
    elif s["type"] == "mqtt": s["port"] = mqtt
    elif s["type"] == "webhook": s["url"] = f"http://127.0.0.1:{closed}/edgetwin/alerts"
    else: continue
    sinks.append(s)
alerts["sinks"] = sinks
names = {s["name"] for s in sinks}
for r in alerts.get("rules", []):
    if "targets" in r: r["targets"] = [t for t in r["targets"] if t in names]
alerts.pop("inputs", None)
alerts["connectivity"] = {"probe_host": "127.0.0.1", "probe_port": mqtt, "interval": "5s", "timeout": "2s", "offline_after": 3}
alerts["state_directory"] = f"{out}/state"
cfg["alerts"] = alerts
cfg["outbox"]["path"] = f"{out}/state/outbox.db"
cfg["uplinks"] = {"mqtt": {"host": "127.0.0.1", "port": mqtt, "client_id": "soak", "topic_template": "edgetwin/{site}/{gateway}/{kind}"}}
cfg["metrics"] = {"prometheus": {"listen": f"127.0.0.1:{prom}"}}
yaml.safe_dump(cfg, open(f"{out}/soak.yaml", "w"), sort_keys=False)
EOF
chmod 600 "$out/soak.yaml"
dotnet "$bin" check --config "$out/soak.yaml" > "$out/check.log" 2>&1 || { cat "$out/check.log"; exit 1; }

start_broker() { "$mosq" -p "$mqtt_port" > "$out/mosquitto.log" 2>&1 & broker=$!; }
start_broker
dotnet "$bin" run --config "$out/soak.yaml" > "$out/agent.log" 2>&1 &
agent=$!; pids+=($agent)
echo "agent pid $agent, broker 127.0.0.1:$mqtt_port, metrics 127.0.0.1:$prom_port, out $out"

metric() { awk -v m="$1" '$1==m {print $2; exit}' "$out/metrics.txt" 2>/dev/null; }
echo "t_s,rss_kb,gc_heap_b,gc_committed_b,gen2,threads,fds,cpu_s,outbox_b,alerts_b,state_b,log_lines,broker,rss_anon_kb" > "$out/soak.csv"
set +e   # a sample that cannot be read (metrics not up yet) leaves an empty cell, not a dead soak
t0=$(date +%s); clk=$(getconf CLK_TCK); lines_prev=0
o1=$((minutes * 60 * 25 / 100)); o2=$((minutes * 60 * 55 / 100)); broker_up=1
while kill -0 "$agent" 2>/dev/null; do
  t=$(( $(date +%s) - t0 ))
  [ "$t" -ge $((minutes * 60)) ] && break
  if [ "$broker_up" = 1 ] && { { [ "$t" -ge "$o1" ] && [ "$t" -lt $((o1 + outage_s)) ]; } || { [ "$t" -ge "$o2" ] && [ "$t" -lt $((o2 + outage_s)) ]; }; }; then
    kill "$broker"; wait "$broker" 2>/dev/null || true; broker_up=0; echo "$t broker down" >> "$out/events.log"
  elif [ "$broker_up" = 0 ] && { [ "$t" -ge $((o1 + outage_s)) ] && [ "$t" -lt "$o2" ] || [ "$t" -ge $((o2 + outage_s)) ]; }; then
    start_broker; broker_up=1; echo "$t broker up" >> "$out/events.log"
  fi
  curl -s -m 5 "http://127.0.0.1:$prom_port/metrics" > "$out/metrics.txt" || true
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$agent/status); thr=$(awk '/^Threads/ {print $2}' /proc/$agent/status)
  fds=$(ls /proc/$agent/fd | wc -l)
  cpu=$(awk -v c="$clk" '{printf "%.1f", ($14+$15)/c}' /proc/$agent/stat)
  gen2=$(grep '^edgetwin_process_gc_collections_total{generation="gen2"}' "$out/metrics.txt" | awk '{print $2}')
  size() { stat -c %s "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
  lines=$(wc -l < "$out/agent.log")
  echo "$t,$rss,$(metric edgetwin_process_gc_heap_bytes),$(metric edgetwin_process_gc_committed_bytes),$gen2,$thr,$fds,$cpu,$(size "$out"/state/outbox*.db),$(size "$out"/state/alerts*.db "$out"/state/alerts.journal),$(du -sb "$out/state" | cut -f1),$((lines - lines_prev)),$broker_up,$(awk '/^RssAnon/ {print $2}' /proc/$agent/status)" >> "$out/soak.csv"
  lines_prev=$lines
  sleep "$sample_s"
done
[ "$broker_up" = 1 ] || start_broker
cp "$out/metrics.txt" "$out/metrics-end.txt" 2>/dev/null || true
echo "done: $out/soak.csv"
