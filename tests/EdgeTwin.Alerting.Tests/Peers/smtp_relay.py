#!/usr/bin/python3
"""A real SMTP relay for the smtp sink's tests (Debian's python3-aiosmtpd).

Each message it takes is appended to --out as one JSON line: {"mail_from", "rcpt_tos", "data", "tls", "login"}.
--cert/--key: STARTTLS offered and required before MAIL (or, with --implicit, TLS from the first byte).
--user/--password: AUTH PLAIN/LOGIN required (only over TLS when TLS is offered); a wrong login gets aiosmtpd's
"535 5.7.8 Authentication credentials invalid". --reject ADDR (repeatable): RCPT TO that address gets a 550.
Prints "ready PORT" once it listens; runs until SIGTERM/SIGKILL.
"""
import argparse
import logging
import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--reject", action="append", default=[])
    a = p.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    lock = threading.Lock()

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower() in (r.lower() for r in a.reject):
                return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            login = session.login_data.decode() if isinstance(session.login_data, bytes) else None
            line = json.dumps({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                # The transport's own: set after STARTTLS and for an implicit-TLS listener (session.ssl only for STARTTLS).
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "login": login,
            })
            with lock, open(a.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            return "250 2.0.0 Ok: queued"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = {}
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    if context is not None and a.implicit:
        kwargs["ssl_context"] = context
    elif context is not None:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    if a.user:
        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = context is not None
    else:
        kwargs["auth_require_tls"] = False

    controller = Controller(Handler(), hostname="127.0.0.1", port=a.port, server_hostname="relay.test", **kwargs)
    controller.start()
    print("ready %d" % a.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
