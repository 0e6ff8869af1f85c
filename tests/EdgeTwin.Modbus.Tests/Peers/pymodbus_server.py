#!/usr/bin/python3
"""A pymodbus (3.x) server for the EdgeTwin.Modbus tests.

Usage: pymodbus_server.py CONFIG.json
Config keys:
  mode: "tcp" | "rtu" (serial port) | "rtu-tcp" (RTU frames over a TCP socket)
  host: address to listen on (tcp, rtu-tcp; default 127.0.0.1, "::1" for IPv6);
  port: TCP port (tcp, rtu-tcp);  serial: device path and baud: rate (rtu)
  units: {"1": {"hr": {"0": [1, 2]}, "ir": {...}, "co": {...}, "di": {...}}}
         sparse maps: only the listed addresses exist; others answer ILLEGAL DATA ADDRESS.
         Units not listed never answer, like a missing device on an RS-485 line.
  behavior: {"silent": bool, "drop_every": N, "delay_first": seconds, "delay": seconds,
             "refuse_every": N, "refuse_function": F, "refuse_code": C}
            refuse_every: every Nth answer to function F (all functions when absent) becomes exception C (default 6,
            SERVER DEVICE BUSY) instead, like a device that is busy, or garbles a block, every other poll.
            max_registers: a register read of more than N registers answers ILLEGAL DATA VALUE (3), like a meter that
            limits its reads (Carlo Gavazzi EM24: 11); each such refusal prints "REFUSED N registers".
  identity: {"VendorName": ..., "ProductCode": ..., "MajorMinorRevision": ...}
  broadcast: true (rtu) to carry out unit 0's writes on every unit, without an answer
Prints READY on stdout once it listens.
"""
import asyncio
import json
import os
import sys
import types

# Debian's pymodbus 3.0.0rc1 imports serial_asyncio at module load. When python3-serial-asyncio is not
# installed, provide the one function it uses on top of pyserial, so the tests need only python3-serial.
try:
    import serial_asyncio  # noqa: F401
except ImportError:
    import serial

    class _SerialTransport(asyncio.Transport):
        def __init__(self, loop, protocol, ser):
            super().__init__()
            self._loop, self._protocol, self._serial, self._closing = loop, protocol, ser, False
            loop.add_reader(ser.fileno(), self._read_ready)
            loop.call_soon(protocol.connection_made, self)

        def _read_ready(self):
            try:
                data = os.read(self._serial.fileno(), 1024)
            except OSError:
                data = b""
            if data:
                self._protocol.data_received(data)

        def write(self, data):
            self._serial.write(data)

        def close(self):
            if not self._closing:
                self._closing = True
                self._loop.remove_reader(self._serial.fileno())
                self._serial.close()
                self._loop.call_soon(self._protocol.connection_lost, None)

        def is_closing(self):
            return self._closing

    async def _create_serial_connection(loop, protocol_factory, url, **kwargs):
        kwargs.pop("timeout", None)
        ser = serial.serial_for_url(url, timeout=0, **kwargs)
        protocol = protocol_factory()
        return _SerialTransport(loop, protocol, ser), protocol

    _shim = types.ModuleType("serial_asyncio")
    _shim.create_serial_connection = _create_serial_connection
    sys.modules["serial_asyncio"] = _shim

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock  # noqa: E402
from pymodbus.device import ModbusDeviceIdentification  # noqa: E402
from pymodbus.framer.rtu_framer import ModbusRtuFramer  # noqa: E402
from pymodbus.pdu import ExceptionResponse  # noqa: E402
from pymodbus.server.async_io import (  # noqa: E402
    ModbusConnectedRequestHandler,
    ModbusSerialServer,
    ModbusSingleRequestHandler,
    ModbusTcpServer,
)


def block(spec):
    values = {}
    for address, value in (spec or {}).items():
        values[int(address)] = value
    return ModbusSparseDataBlock(values)


def build_context(config):
    slaves = {}
    for unit, tables in config.get("units", {}).items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("hr")), ir=block(tables.get("ir")),
            co=block(tables.get("co")), di=block(tables.get("di")), zero_mode=True)
    return ModbusServerContext(slaves=slaves, single=False)


def behaving(base, behavior):
    """A request handler class that can stay silent, delay or drop the connection."""
    state = {"count": 0, "refusable": 0}

    class Handler(base):
        def send(self, message, *addr, **kwargs):
            state["count"] += 1
            n = state["count"]
            if behavior.get("silent"):
                return
            refuse_every = behavior.get("refuse_every", 0)
            function = getattr(message, "function_code", 0)
            if refuse_every and function < 0x80 and behavior.get("refuse_function", function) == function:
                state["refusable"] += 1
                if state["refusable"] % refuse_every == 0:
                    refused = ExceptionResponse(function, behavior.get("refuse_code", 6))
                    refused.transaction_id = message.transaction_id
                    refused.unit_id = message.unit_id
                    message = refused
            max_registers = behavior.get("max_registers", 0)
            if max_registers and function < 0x80 and len(getattr(message, "registers", None) or []) > max_registers:
                print("REFUSED %d registers" % len(message.registers), flush=True)
                refused = ExceptionResponse(function, 3)
                refused.transaction_id = message.transaction_id
                refused.unit_id = message.unit_id
                message = refused
            drop_every = behavior.get("drop_every", 0)
            if drop_every and n % drop_every == 0:
                self.transport.close()
                return
            delay = behavior.get("delay", 0)
            if n == 1 and behavior.get("delay_first"):
                delay = behavior["delay_first"]
            if delay:
                asyncio.get_event_loop().call_later(delay, lambda: base.send(self, message, *addr, **kwargs))
            else:
                base.send(self, message, *addr, **kwargs)

    return Handler


async def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    context = build_context(config)
    identity = ModbusDeviceIdentification(info_name=config.get("identity") or {
        "VendorName": "EdgeTwin Test", "ProductCode": "PYMB-1", "MajorMinorRevision": "3.0"})
    behavior = config.get("behavior", {})
    mode = config.get("mode", "tcp")
    if behavior.get("silent") and mode in ("tcp", "rtu-tcp"):
        # A device that never answers must also never hang up: pymodbus's handler sometimes closed the connection
        # of a silent peer, which the client rightly reported as "connection lost", not a timeout (flaky test).
        async def swallow(reader, writer):
            while await reader.read(4096):
                pass
            writer.close()

        server = await asyncio.start_server(swallow, config.get("host", "127.0.0.1"), int(config["port"]), reuse_address=True)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()
    elif mode == "tcp" or mode == "rtu-tcp":
        framer = ModbusRtuFramer if mode == "rtu-tcp" else None
        server = ModbusTcpServer(
            context, framer=framer, identity=identity, address=(config.get("host", "127.0.0.1"), int(config["port"])),
            handler=behaving(ModbusConnectedRequestHandler, behavior), allow_reuse_address=True,
            ignore_missing_slaves=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        print("READY", flush=True)
        await task
    else:
        server = ModbusSerialServer(
            context, framer=ModbusRtuFramer, identity=identity, port=config["serial"],
            baudrate=int(config.get("baud", 19200)), parity=config.get("parity", "N"), stopbits=1, bytesize=8,
            handler=behaving(ModbusSingleRequestHandler, behavior), ignore_missing_slaves=True,
            broadcast_enable=bool(config.get("broadcast", False)))
        await server.start()
        print("READY", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
