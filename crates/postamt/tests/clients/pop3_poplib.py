"""Drives postamt's POP3 server with Python's poplib, as a mail client would.

Arguments: pop3 port (STLS), pop3s port (implicit TLS), password. The INBOX of
alice@example.test holds two messages, "first" (with a line starting with a dot) and
"second". This script deletes "first" and keeps "second".
"""
import poplib
import ssl
import sys

pop3_port, pop3s_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
user = "alice@example.test"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def subject(lines):
    return next(l for l in lines if l.startswith(b"Subject: "))[len(b"Subject: "):]


# Port 110: STLS first; USER and SASL appear only under TLS.
p = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
assert p.getwelcome().startswith(b"+OK "), p.getwelcome()
caps = p.capa()
assert "STLS" in caps and "USER" not in caps and "SASL" not in caps, caps
p.stls(context=ctx)
caps = p.capa()
assert "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"] and "STLS" not in caps, caps
p.user(user)
p.pass_(password)
count, size = p.stat()
assert count == 2, (count, size)
resp, listing, _ = p.list()
sizes = [int(line.split()[1]) for line in listing]
assert sum(sizes) == size, (sizes, size)
resp, lines, octets = p.retr(1)
assert subject(lines) == b"first", lines
# poplib removes the byte-stuffing again.
assert b".leading dot" in lines, lines
# octets counts the unstuffed lines with their CRLFs: exactly the LIST size.
assert octets == sizes[0], (octets, sizes[0])
resp, uidls, _ = p.uidl()
assert len(uidls) == 2, uidls
assert p.dele(1).startswith(b"+OK"), "DELE"
assert p.stat()[0] == 1
p.quit()

# Port 995: implicit TLS; the deletion was committed at QUIT.
p = poplib.POP3_SSL("127.0.0.1", pop3s_port, context=ctx, timeout=30)
p.user(user)
p.pass_(password)
assert p.stat()[0] == 1
resp, lines, _ = p.top(1, 0)
assert subject(lines) == b"second" and lines[-1] == b"", lines
try:
    p.retr(2)
    raise AssertionError("RETR of a message that does not exist succeeded")
except poplib.error_proto as e:
    assert str(e).startswith("b'-ERR no such message"), e
p.quit()

print("ok")
