#!/usr/bin/python3
"""A scripted, misbehaving SNMP agent on loopback (plain sockets, hand-built BER), for the wire-abuse tests.

Usage: snmp_bad_agent.py [MODE]
Binds 127.0.0.1 on a random port and prints "READY <port>". A line "mode NAME" on stdin switches the behaviour
(answered "MODE NAME"); "quit" exits. Every request is logged as "REQ <version> <pdu> <request-id> <oids>".

It serves a small MIB (sysUpTime, two gauges, a 3-row table under .1.3.6.1.4.1.99999.1.1.1) for v1/v2c on any
community and for SNMPv3 user "ops" (authNoPriv, HMAC-SHA-96, password "authpass1"). Modes (see MODES below):
good | garbage | cross_v3 | truncated | overlength | nested | indefinite | wrong_id | wrong_version | wrong_community |
other_oid | fewer | more | type_string | type_null | type_opaque | duplicate | late | other_port | loop_smaller |
same_oid | endless | empty_table | toobig | eom | huge | flood | silent | silent_walk |
v3_unknown_engine | v3_not_in_time | v3_unknown_user | v3_bad_digest | v3_unauthenticated | v3_wrong_rid | v3_wrong_msgid
toobig_over:N  answers tooBig whenever the answer would hold more than N varbinds (a small agent buffer); the table
               then has 40 rows, so a walk needs several GETBULKs
slow_get+MODE  answers a GET correctly after 0.8 s and everything else as MODE (a slow device whose walk goes wrong)
"""
import hashlib
import hmac
import os
import select
import socket
import struct
import sys
import threading
import time

BASE = (1, 3, 6, 1, 4, 1, 99999)
MIB = {
    (1, 3, 6, 1, 2, 1, 1, 3, 0): ("ticks", 4242),
    BASE + (2, 1, 0): ("gauge", 2301),
    BASE + (2, 2, 0): ("gauge", 17),
}
for _i in (1, 2, 3):
    MIB[BASE + (1, 1, 1, 3, _i)] = ("int", 200 + _i)
    MIB[BASE + (1, 1, 1, 6, _i)] = ("gauge", 1000 * _i)

ENGINE_ID = bytes.fromhex("80001f8805") + b"badagent"
USER = b"ops"
PASSWORD = b"authpass1"
BOOTS = 3
STARTED = time.monotonic()

mode = sys.argv[1] if len(sys.argv) > 1 else "good"
late_delay = float(os.environ.get("LATE_DELAY", "1.5"))
lock = threading.Lock()


# ---- BER -----------------------------------------------------------------------------------------------------------
def enc_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + enc_len(len(content)) + content


def enc_int(v, tag=0x02):
    n = 1
    while not -(1 << (8 * n - 1)) <= v < (1 << (8 * n - 1)):
        n += 1
    return tlv(tag, v.to_bytes(n, "big", signed=True))


def enc_uint(v, tag):
    b = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return tlv(tag, b)


def enc_oid(arcs):
    out = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def enc_value(v):
    kind, x = v
    if kind == "int":
        return enc_int(x)
    if kind == "gauge":
        return enc_uint(x, 0x42)
    if kind == "ticks":
        return enc_uint(x, 0x43)
    if kind == "string":
        return tlv(0x04, x)
    if kind == "null":
        return b"\x05\x00"
    if kind == "opaque":
        return tlv(0x44, x)
    if kind == "counter":
        return enc_uint(x, 0x41)
    if kind == "eom":
        return b"\x82\x00"
    if kind == "nosuchobject":
        return b"\x80\x00"
    raise ValueError(kind)


def dec(data, pos):
    tag = data[pos]
    ln = data[pos + 1]
    pos += 2
    if ln & 0x80:
        n = ln & 0x7F
        ln = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + ln], pos + ln


def dec_int(c):
    return int.from_bytes(c, "big", signed=True)


def dec_oid(c):
    arcs = [c[0] // 40, c[0] % 40] if c[0] < 80 else [2, c[0] - 80]
    v = 0
    for b in c[1:]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    return tuple(arcs)


def dec_items(c):
    items, pos = [], 0
    while pos < len(c):
        tag, content, pos = dec(c, pos)
        items.append((tag, content))
    return items


def dec_pdu(c_tag, c):
    rid_t, rid, p = dec(c, 0)
    _, a, p = dec(c, p)
    _, b, p = dec(c, p)
    _, vbl, p = dec(c, p)
    oids = [dec_oid(dec_items(vb)[0][1]) for _, vb in dec_items(vbl)]
    return c_tag, dec_int(rid), dec_int(a), dec_int(b), oids


def enc_pdu(tag, rid, status, index, varbinds):
    vbs = b"".join(seq(enc_oid(o), enc_value(v)) for o, v in varbinds)
    return tlv(tag, enc_int(rid) + enc_int(status) + enc_int(index) + seq(vbs))


def oid_str(o):
    return "." + ".".join(map(str, o))


# ---- MIB ---------------------------------------------------------------------------------------------------------
BIG_TABLE = {BASE + (1, 1, 1, 3, i): ("int", 200 + i) for i in range(1, 41)}


def mib():
    return {**MIB, **BIG_TABLE} if mode.startswith("toobig_over:") else MIB


def get(o):
    return mib().get(o, ("nosuchobject", None))


def next_of(o):
    table = mib()
    for k in sorted(table):
        if k > o:
            return k, table[k]
    return o, ("eom", None)


def answer(pdu_tag, oids, non_rep, max_rep):
    if pdu_tag == 0xA0:
        return [(o, get(o)) for o in oids]
    if pdu_tag == 0xA1:
        return [next_of(o) for o in oids]
    if pdu_tag == 0xA5:
        out = [next_of(o) for o in oids[:non_rep]]
        # RFC 3416 4.2.3: repetition by repetition, each repeater going on from its own last OID
        cur = list(oids[non_rep:])
        for _ in range(max(1, max_rep)):
            row = [next_of(o) for o in cur]
            out.extend(row)
            cur = [o for o, _ in row]
            if all(v[0] == "eom" for _, v in row):
                break
        return out
    return []


# ---- USM (HMAC-SHA-96, RFC 3414 A.2.2) --------------------------------------------------------------------------
def password_to_key(pw):
    ku = hashlib.sha1((pw * (1048576 // len(pw) + 1))[:1048576]).digest()
    return hashlib.sha1(ku + ENGINE_ID + ku).digest()


AUTH_KEY = password_to_key(PASSWORD)


def v3_message(msg_id, flags, user, auth_params, scoped, engine_id=ENGINE_ID, boots=BOOTS, etime=None):
    etime = int(time.monotonic() - STARTED) + 1000 if etime is None else etime
    header = seq(enc_int(msg_id), enc_int(65507), tlv(0x04, bytes([flags])), enc_int(3))
    usm = seq(tlv(0x04, engine_id), enc_int(boots), enc_int(etime), tlv(0x04, user), tlv(0x04, auth_params), tlv(0x04, b""))
    return seq(enc_int(3), header, tlv(0x04, usm), scoped)


def v3_signed(msg_id, user, scoped, good_digest=True):
    zero = bytes(12)
    msg = v3_message(msg_id, 0x01, user, zero, scoped)
    mac = hmac.new(AUTH_KEY, msg, hashlib.sha1).digest()[:12] if good_digest else bytes(range(1, 13))
    at = msg.index(zero)
    return msg[:at] + mac + msg[at + 12:]


def report(msg_id, rid, counter_arc, user=b"", engine_id=ENGINE_ID):
    scoped = seq(tlv(0x04, engine_id), tlv(0x04, b""),
                 enc_pdu(0xA8, rid, 0, 0, [((1, 3, 6, 1, 6, 3, 15, 1, 1, counter_arc, 0), ("counter", 7))]))
    return v3_message(msg_id, 0x00, user, b"", scoped, engine_id=engine_id)


# ---- behaviour ---------------------------------------------------------------------------------------------------
def respond_v12(version, community, pdu_tag, rid, a, b, oids):
    """Returns a list of (delay, bytes, via_other_socket)."""
    vbs = answer(pdu_tag, oids, a, b)
    status, index = 0, 0
    m = mode
    if m.startswith("slow_get+"):
        if pdu_tag == 0xA0:
            good = tlv(0x30, enc_int(version) + tlv(0x04, community) + enc_pdu(0xA2, rid, 0, 0, vbs))
            return [(0.8, good, False)]
        m = m[len("slow_get+"):]
    if m.startswith("toobig_over:") and len(vbs) > int(m.split(":")[1]):
        log(f"TOOBIG {len(vbs)} varbinds")
        vbs, status, index = [(o, ("null", None)) for o in oids], 1, 0
    if m in ("loop_smaller", "same_oid", "endless", "empty_table", "eom") and pdu_tag in (0xA1, 0xA5):
        o = oids[-1]
        if m == "loop_smaller":
            vbs = [(BASE + (1, 1, 1, 3, 1), ("int", 1)), (BASE + (1, 1, 1, 3, 0), ("int", 0))]
        elif m == "same_oid":
            vbs = [(BASE + (1, 1, 1, 3, 1), ("int", 1))] * (1 if pdu_tag == 0xA1 else 3)
        elif m == "endless":
            vbs = []
            for _ in range(1 if pdu_tag == 0xA1 else max(1, b)):
                o = o + (1,) if len(o) < 40 else o[:-1] + (o[-1] + 1,)
                vbs.append((o, ("int", 5)))
        elif m == "empty_table":
            vbs = [((1, 3, 6, 1, 4, 1, 99999, 2, 1, 0), ("gauge", 1))]
        elif m == "eom":
            vbs = [(o, ("eom", None))]
    if m == "toobig":
        vbs, status, index = [(o, ("null", None)) for o in oids], 1, 0
    if m == "other_oid":
        vbs = [(o + (7,), v) for o, v in vbs]
    if m == "fewer":
        vbs = vbs[:-1]
    if m == "more":
        vbs = vbs + [((1, 3, 6, 1, 2, 1, 1, 5, 0), ("string", b"extra"))]
    if m in ("type_string", "type_null", "type_opaque"):
        bad = {"type_string": ("string", b"abc"), "type_null": ("null", None), "type_opaque": ("opaque", b"\x01\x02\x03")}[m]
        vbs = [(o, bad if o == BASE + (2, 1, 0) else v) for o, v in vbs]
    if m == "huge" and pdu_tag == 0xA0:
        # One datagram near the UDP maximum (65507 bytes over IPv4).
        vbs = [(o, ("string", b"x" * 64000)) if o == BASE + (2, 2, 0) else (o, v) for o, v in vbs]
    out_version = {"wrong_version": 1 - version if version < 2 else 0}.get(m, version)
    out_community = b"notmine" if m == "wrong_community" else community
    out_rid = rid + 1 if m == "wrong_id" else rid
    body = enc_int(out_version) + tlv(0x04, out_community) + enc_pdu(0xA2, out_rid, status, index, vbs)
    msg = tlv(0x30, body)
    if m == "garbage":
        return [(0, os.urandom(40), False)]
    if m == "cross_v3":
        # An SNMPv3 message (encrypted, so no readable PDU) whose msgID equals the v1/v2c request-id.
        header = seq(enc_int(rid), enc_int(65507), tlv(0x04, b"\x03"), enc_int(3))
        usm = seq(tlv(0x04, ENGINE_ID), enc_int(BOOTS), enc_int(1), tlv(0x04, USER), tlv(0x04, bytes(12)), tlv(0x04, bytes(8)))
        return [(0, seq(enc_int(3), header, tlv(0x04, usm), tlv(0x04, os.urandom(32))), False)]
    if m == "truncated":
        return [(0, msg[:len(msg) // 2], False)]
    if m == "overlength":
        return [(0, b"\x30\x82\xff\xf0" + body, False)]
    if m == "indefinite":
        return [(0, b"\x30\x80" + body + b"\x00\x00", False)]
    if m == "nested":
        # The varbind list claims 3 bytes more than it holds; the outer lengths are consistent with the datagram.
        vbs_bytes = b"".join(seq(enc_oid(o), enc_value(v)) for o, v in vbs)
        vbl = b"\x30" + enc_len(len(vbs_bytes) + 3) + vbs_bytes
        pdu = tlv(0xA2, enc_int(rid) + enc_int(0) + enc_int(0) + vbl)
        return [(0, tlv(0x30, enc_int(version) + tlv(0x04, community) + pdu), False)]
    if m == "duplicate":
        return [(0, msg, False), (0.05, msg, False)]
    if m == "late":
        return [(late_delay, msg, False)]
    if m == "other_port":
        return [(0, msg, True)]
    if m == "silent" or (m == "silent_walk" and pdu_tag != 0xA0):
        return []
    if m == "flood":
        junk = [(0, os.urandom(100 + i % 900), False) for i in range(200)]
        fake = tlv(0x30, enc_int(version) + tlv(0x04, community) + enc_pdu(0xA2, rid ^ 0x5A5A, 0, 0, vbs))
        return junk + [(0, fake, False), (0, msg, False)]
    return [(0, msg, False)]


def respond_v3(data):
    _, outer, _ = dec(data, 0)
    items = dec_items(outer)
    header = dec_items(items[1][1])
    msg_id = dec_int(header[0][1])
    flags = header[2][1][0]
    usm = dec_items(dec_items(items[2][1])[0][1])
    engine_id, user = usm[0][1], usm[3][1]
    if flags & 0x02:
        return [(0, report(msg_id, 0, 6), False)]  # no privacy here: decryptionErrors
    scoped = dec_items(items[3][1])
    pdu_tag = scoped[2][0]
    _, rid, a, b, oids = dec_pdu(pdu_tag, scoped[2][1])
    log(f"REQ 3 {pdu_tag:#x} {rid} {' '.join(map(oid_str, oids))}")
    if len(engine_id) == 0 or mode == "v3_unknown_engine":
        return [(0, report(msg_id, rid, 4), False)]
    if mode == "v3_not_in_time":
        return [(0, report(msg_id, rid, 2, user), False)]
    if mode == "v3_unknown_user":
        return [(0, report(msg_id, rid, 3, user), False)]
    if mode == "silent":
        return []
    out_rid = rid + 1 if mode == "v3_wrong_rid" else rid
    out_msg_id = msg_id + 1 if mode == "v3_wrong_msgid" else msg_id
    resp = seq(tlv(0x04, ENGINE_ID), tlv(0x04, b""), enc_pdu(0xA2, out_rid, 0, 0, answer(pdu_tag, oids, a, b)))
    if mode == "v3_unauthenticated":
        return [(0, v3_message(msg_id, 0x00, user, b"", resp), False)]
    return [(0, v3_signed(out_msg_id, user, resp, good_digest=mode != "v3_bad_digest"), False)]


def log(line):
    with lock:
        print(line, flush=True)


def main():
    global mode
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    log(f"READY {sock.getsockname()[1]}")

    def send_later(items, remote):
        for delay, payload, via_other in items:
            if delay:
                time.sleep(delay)
            try:
                (other if via_other else sock).sendto(payload, remote)
            except OSError as e:
                log(f"SEND failed ({len(payload)} bytes): {e}")

    while True:
        ready, _, _ = select.select([sock, sys.stdin], [], [])
        if sys.stdin in ready:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                return
            if line.startswith("mode "):
                mode = line.split()[1]
                log(f"MODE {mode}")
            continue
        data, remote = sock.recvfrom(65535)
        try:
            _, outer, _ = dec(data, 0)
            items = dec_items(outer)
            version = dec_int(items[0][1])
            if version == 3:
                out = respond_v3(data)
            else:
                pdu_tag = items[2][0]
                _, rid, a, b, oids = dec_pdu(pdu_tag, items[2][1])
                log(f"REQ {version} {pdu_tag:#x} {rid} {' '.join(map(oid_str, oids))}")
                out = respond_v12(version, items[1][1], pdu_tag, rid, a, b, oids)
        except (IndexError, ValueError) as e:
            log(f"BAD request from {remote}: {e}")
            continue
        if any(d for d, _, _ in out):
            threading.Thread(target=send_later, args=(out, remote), daemon=True).start()
        else:
            send_later(out, remote)


if __name__ == "__main__":
    main()
