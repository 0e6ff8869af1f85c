#!/bin/bash
# usage: measure-flash.sh BINDIR LABEL [WARMUP_S] [MEASURE_S]   (BINDIR: src/EdgeTwin.Agent/bin/Release/net10.0)
# then: python3 flash-commits.py /tmp/flash-run-LABEL-XXXX   (commits and journal pages by size)
# Agent + edgetwin sim (53 devices, 10 s polling) + mosquitto up the whole time (steady state); prints write_bytes
# over MEASURE_S and the strace'd writes/fsyncs per file.
set -u
BIN=$1; LABEL=$2; WARM=${3:-90}; MEAS=${4:-60}
D=$(mktemp -d /tmp/flash-run-$LABEL-XXXX)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' $P > $D/mosq.conf
mosquitto -c $D/mosq.conf > $D/mosq.log 2>&1 & MQ=$!
$BIN/edgetwin sim --racks 20 --cooling-units 2 --machines 4 --line --config-out $D/site.yaml > $D/sim.log 2>&1 & SIM=$!
for i in $(seq 60); do [ -s $D/site.yaml ] && grep -q '^outbox' $D/site.yaml && break; sleep 1; done
sleep 2
sed -i "s#path: /var/lib/edgetwin/outbox.db#path: $D/state/outbox.db#" $D/site.yaml
printf 'uplinks:\n  mqtt: { host: 127.0.0.1, port: %s, protocol: "5", client_id: gw-flash-%s }\n' $P $LABEL >> $D/site.yaml
mkdir -p $D/state
$BIN/edgetwin run --config $D/site.yaml > $D/agent.log 2>&1 & AG=$!
sleep $WARM
APID=$(pgrep -P $AG -f edgetwin || echo $AG); APID=$AG
W0=$(awk '/^write_bytes/{print $2}' /proc/$APID/io)
sleep $((MEAS*2))
W1=$(awk '/^write_bytes/{print $2}' /proc/$APID/io)
strace -f -tt -qq -e trace=pwrite64,write,fsync,fdatasync -p $APID -o $D/strace.txt 2>/dev/null & ST=$!
sleep $MEAS
kill -INT $ST; wait $ST
ls -l /proc/$APID/fd 2>/dev/null | awk '{print $9, $11}' > $D/fds.txt
kill -TERM $AG; sleep 5; kill -0 $AG 2>/dev/null && kill -KILL $AG
kill -INT $SIM; sleep 1; kill -0 $SIM 2>/dev/null && kill -KILL $SIM
kill $MQ
python3 - $D $MEAS $W0 $W1 <<'PY'
import sys,re,collections
d,meas,w0,w1=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4])
fds=dict(l.split() for l in open(d+'/fds.txt') if len(l.split())==2)
b=collections.Counter(); n=collections.Counter(); fs=collections.Counter()
for l in open(d+'/strace.txt'):
    m=re.match(r'\d+\s+(?:[\d:.]+\s+)?(pwrite64|write|fsync|fdatasync)\((\d+)(?:,.*)?\)\s*= (-?\d+)',l)
    if not m: continue
    call,fd,ret=m.group(1),m.group(2),int(m.group(3))
    f=fds.get(fd,'fd'+fd)
    if call in('fsync','fdatasync'): fs[f]+=1
    else:
        if ret>0: b[f]+=ret; n[f]+=1
print(f"{d}: write_bytes {w1-w0} B in {2*meas} s = {(w1-w0)/(2*meas)*86400/1e9:.2f} GB/day (without strace); then strace {meas} s:")
for f in sorted(set(b)|set(fs), key=lambda f:-b[f]):
    if f.startswith('pipe:') or f.startswith('socket:') or f=='/dev/null': continue
    print(f"  {f}: {b[f]} B in {n[f]} writes, {fs[f]} fsyncs ({b[f]/meas*86400/1e9:.2f} GB/day)")
PY
