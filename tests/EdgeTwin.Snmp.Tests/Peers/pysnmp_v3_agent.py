"""A pysnmp 4.4 SNMPv3 command responder (Debian python3-pysnmp4): a second, independent USM implementation.

Binds 127.0.0.1 port 0 and prints "READY <port>". Its users (auth password authpass123, priv password privpass123):
  reeder256     SHA-1   usmAesCfb256Protocol            (Reeder key extension; net-snmp AES-256-C, Cisco)
  reeder192     MD5     usmAesCfb192Protocol            (Reeder; net-snmp AES-192-C)
  reeder256sha224 SHA-224 usmAesCfb256Protocol          (Reeder; SHA-224's 28 octets still need extending)
  blum256       SHA-1   usmAesBlumenthalCfb256Protocol  (Blumenthal key extension; net-snmp AES-256)
  blum192       MD5     usmAesBlumenthalCfb192Protocol  (Blumenthal; net-snmp AES-192)
Answers GET/GETNEXT/GETBULK from pysnmp's own MIB (sysDescr reads "PySNMP engine version ...").
Every request it cannot decrypt is logged as "DECRYPTION-ERROR" (pysnmp drops it, like net-snmp's snmpd).
Runs until stdin closes or it is killed.
"""
import sys
import threading
import os

from pysnmp.entity import engine, config
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.carrier.asyncore.dgram import udp
from pysnmp.proto import errind

USERS = [
    ("reeder256", config.usmHMACSHAAuthProtocol, config.usmAesCfb256Protocol),
    ("reeder192", config.usmHMACMD5AuthProtocol, config.usmAesCfb192Protocol),
    ("reeder256sha224", config.usmHMAC128SHA224AuthProtocol, config.usmAesCfb256Protocol),
    ("blum256", config.usmHMACSHAAuthProtocol, config.usmAesBlumenthalCfb256Protocol),
    ("blum192", config.usmHMACMD5AuthProtocol, config.usmAesBlumenthalCfb192Protocol),
]

snmp_engine = engine.SnmpEngine()
transport = udp.UdpTransport().openServerMode(("127.0.0.1", 0))
config.addTransport(snmp_engine, udp.domainName, transport)
for name, auth, priv in USERS:
    config.addV3User(snmp_engine, name, auth, "authpass123", priv, "privpass123")
    config.addVacmUser(snmp_engine, 3, name, "authPriv", (1, 3, 6), (1, 3, 6))


def observe(snmp_engine, execpoint, variables, cb_ctx):
    # The USM's failures reach the message dispatcher as a status; decryption ones are what these tests look at.
    if variables.get("statusInformation", {}).get("errorIndication") == errind.decryptionError:
        print("DECRYPTION-ERROR", flush=True)


snmp_engine.observer.registerObserver(observe, "rfc3412.prepareDataElements:sm-failure")

snmp_context = context.SnmpContext(snmp_engine)
cmdrsp.GetCommandResponder(snmp_engine, snmp_context)
cmdrsp.NextCommandResponder(snmp_engine, snmp_context)
cmdrsp.BulkCommandResponder(snmp_engine, snmp_context)


def watch_stdin():
    # The test's end: stdin closes (or the process is killed), and so does the responder.
    sys.stdin.read()
    os._exit(0)


threading.Thread(target=watch_stdin, daemon=True).start()
snmp_engine.transportDispatcher.jobStarted(1)
print("READY %d" % transport.socket.getsockname()[1], flush=True)
try:
    snmp_engine.transportDispatcher.runDispatcher()
finally:
    snmp_engine.transportDispatcher.closeDispatcher()
