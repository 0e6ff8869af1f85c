#!/usr/bin/python3
"""A scripted misbehaving Modbus device for the EdgeTwin.Modbus tests (plain sockets / a pty, no pymodbus).

Usage: hostile_peer.py tcp CASE [BAD]            listens on a random loopback port, prints "READY <port>"
       hostile_peer.py rtu PTY BAUD CASE [BAD]   answers on one end of a socat pty pair, prints "READY"
Holding/input register i reads as i + 1000 (so answers are checkable). The first BAD requests (default: all) to the
hostile unit (1; TCP: every unit) get CASE; after that the peer behaves, to check recovery. On RTU, unit 2 on the same
line always answers correctly: the healthy neighbour.
TCP cases: ok wrong_tid wrong_proto wrong_unit len_big len_small len_zero len_huge trickle glued late junk_after
  wrong_fc exc:N bytecount odd_bytecount truncated silent rst every_other close_after len_claims_20 split3
  stale_then_right junk_late proto_after_first
  len_claims_20: the MBAP length field says 20 whatever follows (a read of 4 registers: 11 bytes follow), then nothing
  split3: the right answer in 3 segments 50 ms apart, cut inside the MBAP header and inside the PDU
  stale_then_right: of each pair of requests, the first gets no answer; the second gets the first's answer (its
    transaction id, the late answer to a request the client gave up on), then 50 ms later its own
  junk_late: the right answer, then 30 ms later (a later TCP segment) 7 bytes of junk, as serial-to-Ethernet gateways
    do that flush their UART buffer late; junk_late:S waits S seconds instead
  proto_after_first: the first request is answered right; every later one with protocol id 1 (a garbled answer to a
    request that is waiting, after a good one on the same connection)
  fake_header: the right answer, then 30 ms later 7 bytes of junk that look like an MBAP header (transaction 0x7777,
    which nobody waits for, protocol 0, length 12: as long as the next answer); fake_header:S waits S seconds instead
  junk_endless: no answer; junk (AA 55 …, 64 bytes every 5 ms) until the client closes the connection
  junk_trickle: no answer; junk (AA 55 …, 8 bytes every 100 ms) until the client closes the connection
  gw:CODE:UNIT:DELAY: a gateway whose serial-side UNIT does not answer: after DELAY seconds (its own serial timeout)
    exception CODE (10 path unavailable, 11 target failed to respond) for UNIT; the other units answer right away
  gw_silent:UNIT: a gateway that never answers for UNIT (no exception either); the other units answer right away
RTU cases: ok crc other_slave noise_before cut_short gap echo late wrong_baud (garbage as long as the answer)
  wire:BAUD (the answer paced as a UART at BAUD sends it)
Prints one line per request it sees ("REQ <n> unit <u> fc <f> -> <case>") and one per TCP connection ("ACCEPT") to stdout.
"""
import socket
import struct
import sys
import threading
import time

HOSTILE_UNIT = 1
LATE = 1.5   # seconds: longer than the timeouts the tests give


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def answer_pdu(pdu):
    """The correct response PDU to a request PDU."""
    fc = pdu[0]
    addr, count = struct.unpack(">HH", pdu[1:5])
    if fc in (3, 4):
        return bytes([fc, 2 * count]) + b"".join(struct.pack(">H", (addr + i + 1000) & 0xFFFF) for i in range(count))
    if fc in (1, 2):
        n = (count + 7) // 8
        return bytes([fc, n]) + bytes([0x55] * n)
    if fc in (5, 6, 15, 16):
        return pdu[:5]
    return bytes([fc | 0x80, 1])


def log(text):
    print(text, flush=True)


# ------------------------------------------------------------------ TCP
def mbap(tid, unit, pdu, proto=0, length=None):
    return struct.pack(">HHHB", tid, proto, len(pdu) + 1 if length is None else length, unit) + pdu


def tcp_session(conn, case, state, bad):
    buf = b""
    while True:
        try:
            data = conn.recv(4096)
        except OSError:
            return
        if not data:
            return
        buf += data
        while len(buf) >= 7:
            tid, proto, length, unit = struct.unpack(">HHHB", buf[:7])
            if len(buf) < 6 + length:
                break
            pdu, buf = buf[7:6 + length], buf[6 + length:]
            n = state["n"]
            state["n"] += 1
            c = case if n < bad else "ok"
            log(f"REQ {n} unit {unit} fc {pdu[0]} -> {c}")
            good = answer_pdu(pdu)
            out = mbap(tid, unit, good)
            if c == "ok":
                conn.sendall(out)
            elif c == "wrong_tid":
                conn.sendall(mbap((tid + 100) & 0xFFFF, unit, good))
            elif c == "wrong_proto":
                conn.sendall(mbap(tid, unit, good, proto=1))
            elif c == "wrong_unit":
                conn.sendall(mbap(tid, (unit + 1) & 0xFF, good))
            elif c == "len_big":
                conn.sendall(mbap(tid, unit, good, length=len(good) + 5))
            elif c == "len_small":
                conn.sendall(mbap(tid, unit, good, length=len(good) - 1))
            elif c == "len_claims_20":
                conn.sendall(mbap(tid, unit, good, length=20))
            elif c == "split3":
                for part in (out[:4], out[4:9], out[9:]):
                    conn.sendall(part)
                    time.sleep(0.05)
            elif c == "stale_then_right":
                if n % 2 == 0:
                    state["held"] = mbap(tid, unit, good)
                else:
                    conn.sendall(state.pop("held"))
                    time.sleep(0.05)
                    conn.sendall(out)
            elif c == "len_zero":
                conn.sendall(mbap(tid, unit, good, length=0))
            elif c == "len_huge":
                conn.sendall(mbap(tid, unit, good, length=300))
            elif c == "trickle":
                for b in out:
                    conn.sendall(bytes([b]))
                    time.sleep(0.3)
            elif c == "glued":
                conn.sendall(out + out)
            elif c == "late":
                threading.Timer(LATE, lambda o=out: _send_quiet(conn, o)).start()
            elif c == "junk_after":
                conn.sendall(out + b"\xde\xad\xbe\xef\x00\x01\x02")
            elif c.startswith("junk_late"):
                conn.sendall(out)
                time.sleep(float(c[10:]) if c.startswith("junk_late:") else 0.03)
                _send_quiet(conn, b"\xde\xad\xbe\xef\x00\x01\x02")  # the client may have reset it meanwhile
            elif c.startswith("fake_header"):
                conn.sendall(out)
                time.sleep(float(c[12:]) if c.startswith("fake_header:") else 0.03)
                _send_quiet(conn, mbap(0x7777, unit, b"", length=12))
            elif c == "junk_endless":
                threading.Thread(target=_junk_forever, args=(conn, 32, 0.005), daemon=True).start()
            elif c == "junk_trickle":
                threading.Thread(target=_junk_forever, args=(conn, 4, 0.1), daemon=True).start()
            elif c == "proto_after_first":
                conn.sendall(out if n == 0 else mbap(tid, unit, good, proto=1))
            elif c == "wrong_fc":
                conn.sendall(mbap(tid, unit, bytes([4 if pdu[0] == 3 else 3]) + good[1:]))
            elif c.startswith("gw_silent:"):
                if unit != int(c[10:]):
                    conn.sendall(out)
            elif c.startswith("gw:"):
                code, target, delay = c[3:].split(":")
                if unit == int(target):
                    time.sleep(float(delay))
                    conn.sendall(mbap(tid, unit, bytes([pdu[0] | 0x80, int(code, 0)])))
                else:
                    conn.sendall(out)
            elif c.startswith("exc:"):
                conn.sendall(mbap(tid, unit, bytes([pdu[0] | 0x80, int(c[4:], 0)])))
            elif c == "bytecount":
                conn.sendall(mbap(tid, unit, good[:1] + bytes([good[1] + 2]) + good[2:] + b"\x00\x00"))
            elif c == "odd_bytecount":
                conn.sendall(mbap(tid, unit, good[:1] + bytes([good[1] - 1]) + good[2:-1]))
            elif c == "truncated":
                conn.sendall(mbap(tid, unit, good[:-1]))
            elif c == "silent":
                pass
            elif c == "rst":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            elif c == "every_other":
                if n % 2 == 0:
                    conn.sendall(out)
            elif c == "close_after":
                conn.sendall(out)
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                return
            else:
                raise SystemExit(f"unknown case {c}")


def _junk_forever(conn, pairs, every):
    try:
        while True:
            conn.sendall(b"\xaa\x55" * pairs)
            time.sleep(every)
    except OSError:
        pass


def _send_quiet(conn, data):
    try:
        conn.sendall(data)
    except OSError:
        pass


def serve_tcp(case, bad):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    log(f"READY {srv.getsockname()[1]}")
    state = {"n": 0}
    while True:
        conn, _ = srv.accept()
        log("ACCEPT")
        if case == "rst" and state["n"] < bad:
            # Accept, then reset at once (before any request).
            state["n"] += 1
            log(f"REQ {state['n'] - 1} accept -> rst")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            continue
        threading.Thread(target=tcp_session, args=(conn, case, state, bad), daemon=True).start()


# ------------------------------------------------------------------ RTU
def request_length(buf):
    if len(buf) < 2:
        return 0
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 0 if len(buf) < 7 else 9 + buf[6]
    return -1


def serve_rtu(path, baud, case, bad):
    import os
    import termios
    import tty
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    log("READY")
    buf = b""
    n = 0
    while True:
        data = os.read(fd, 1024)
        if not data:
            return
        buf += data
        while True:
            need = request_length(buf)
            if need == -1:
                log(f"DROP {buf.hex()}")
                buf = b""
                break
            if need == 0 or len(buf) < need:
                break
            frame, buf = buf[:need], buf[need:]
            if crc16(frame[:-2]) != frame[-2:]:
                log(f"BADCRC {frame.hex()}")
                buf = b""
                break
            unit, pdu = frame[0], frame[1:-2]
            if unit not in (HOSTILE_UNIT, 2):
                continue
            good = bytes([unit]) + answer_pdu(pdu)
            good += crc16(good)
            c = case if unit == HOSTILE_UNIT and n < bad else "ok"
            if unit == HOSTILE_UNIT:
                n += 1
            log(f"REQ {n} unit {unit} fc {pdu[0]} -> {c}")
            time.sleep(0.005)
            if c == "ok":
                os.write(fd, good)
            elif c == "crc":
                os.write(fd, good[:-1] + bytes([good[-1] ^ 0xFF]))
            elif c == "other_slave":
                other = bytes([9]) + good[1:-2]
                os.write(fd, other + crc16(other))
            elif c == "noise_before":
                os.write(fd, b"\x00\xff\x13\x37\xaa" + good)
            elif c == "cut_short":
                os.write(fd, good[:-3])
            elif c == "gap":
                os.write(fd, good[:3])
                time.sleep(0.05)
                os.write(fd, good[3:])
            elif c == "echo":
                os.write(fd, frame)
                time.sleep(0.005)
                os.write(fd, good)
            elif c == "late":
                threading.Timer(LATE, lambda g=good: os.write(fd, g)).start()
            elif c.startswith("wire:"):
                # The answer paced as a UART at that baud rate sends it (8 bytes at a time): a pty has no baud rate.
                per_byte = 11.0 / int(c[5:])
                for i in range(0, len(good), 8):
                    os.write(fd, good[i:i + 8])
                    time.sleep(8 * per_byte)
            elif c == "wrong_baud":
                # What the master's UART makes of a device at another baud rate: bytes of no frame, about as many.
                os.write(fd, bytes(((b >> 1) | 0x80) ^ (i * 37 & 0x7F) for i, b in enumerate(good)))
            else:
                raise SystemExit(f"unknown case {c}")


if __name__ == "__main__":
    if sys.argv[1] == "tcp":
        serve_tcp(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30)
    else:
        serve_rtu(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 1 << 30)
