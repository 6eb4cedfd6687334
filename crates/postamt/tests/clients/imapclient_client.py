"""A session with the imapclient library (PyPI): folders, search, fetch, flags, move, idle."""
import ssl
import sys

from imapclient import IMAPClient

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=ctx, timeout=30) as c:
    c.login(user, password)
    caps = c.capabilities()
    assert b"IDLE" in caps and b"MOVE" in caps, caps
    folders = [f[2] for f in c.list_folders()]
    assert "INBOX" in folders and "Archive" in folders, folders
    special = {f[2]: f[0] for f in c.list_folders()}
    assert b"\\Archive" in special["Archive"], special
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 1, info
    uids = c.search(["SUBJECT", "hello"])
    assert len(uids) == 1, uids
    data = c.fetch(uids, ["ENVELOPE", "FLAGS", "BODY.PEEK[TEXT]"])
    env = data[uids[0]][b"ENVELOPE"]
    assert env.subject == b"hello imapclient", env
    c.add_flags(uids, [b"\\Seen", b"$Done"])
    flags = c.get_flags(uids)[uids[0]]
    assert b"\\Seen" in flags and b"$Done" in flags, flags
    c.idle()
    c.idle_done()
    c.move(uids, "Archive")
    assert c.search("ALL") == []
    c.logout()
print("ok")
