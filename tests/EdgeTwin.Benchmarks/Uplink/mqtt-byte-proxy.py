#!/usr/bin/python3
# Counting TCP proxy between an EdgeTwin agent and its MQTT broker (Uplink README, "Measured", "On the wire").
# usage: mqtt-byte-proxy.py LISTEN_PORT BROKER_PORT STATS.json
# Every 2 s writes {"up": bytes agent->broker, "down": bytes broker->agent, "kinds": {KIND: [packets, bytes]}}:
# KIND is the last topic level of a PUBLISH (summary, raw, event, status), spb:TYPE for Sparkplug, ctl:N for other packets.
import json, os, socket, sys, threading, time
listen_port, target_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stats = {"up": 0, "down": 0, "kinds": {}, "start": time.time()}
lock = threading.Lock()
def kind_of(topic):
    p = topic.split('/')
    if p[0] == 'spBv1.0': return 'spb:' + p[2]
    return p[-1]
def parse_up(buf, acc):
    buf = acc + buf
    i = 0
    while True:
        if len(buf) - i < 2: break
        t = buf[i]; mult = 1; rl = 0; j = i + 1
        while True:
            if j >= len(buf): return buf[i:]
            b = buf[j]; rl += (b & 127) * mult; mult *= 128; j += 1
            if not b & 128: break
        if j + rl > len(buf): return buf[i:]
        total = j - i + rl
        if t >> 4 == 3:
            tl = buf[j] << 8 | buf[j+1]; k = kind_of(buf[j+2:j+2+tl].decode())
        else: k = 'ctl:%d' % (t >> 4)
        with lock:
            d = stats["kinds"].setdefault(k, [0, 0]); d[0] += 1; d[1] += total
        i += total
    return buf[i:]
def pipe(a, b, up):
    acc = b''
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            with lock: stats["up" if up else "down"] += len(d)
            if up: acc = parse_up(d, acc)
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def dump():
    while True:
        time.sleep(2)
        with lock: s = dict(stats, now=time.time())
        with open(out + '.tmp', 'w') as f:
            json.dump(s, f)
        os.replace(out + '.tmp', out)
threading.Thread(target=dump, daemon=True).start()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.bind(('127.0.0.1', listen_port)); ls.listen(8)
while True:
    c, _ = ls.accept(); u = socket.create_connection(('127.0.0.1', target_port))
    threading.Thread(target=pipe, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, False), daemon=True).start()
