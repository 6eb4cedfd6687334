"""A typical mail-client session with Python's imaplib against postamt.

Arguments: imaps port, user, password.
LIST, SELECT, FETCH headers, set \\Seen, MOVE to Trash, EXPUNGE, APPEND to Sent.
"""
import email
import imaplib
import ssl
import sys
import time

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=30)
typ, _ = m.login(user, password)
assert typ == "OK"
typ, caps = m.capability()
caps = caps[0].decode().upper().split()
assert "MOVE" in caps and "UIDPLUS" in caps and "IDLE" in caps, caps

typ, boxes = m.list()
names = [b.decode().rsplit(" ", 1)[-1].strip('"') for b in boxes]
for expected in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]:
    assert expected in names, names

typ, data = m.select("INBOX")
assert typ == "OK" and int(data[0]) == 3, data

typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
assert typ == "OK", data
subjects = []
for item in data:
    if isinstance(item, tuple):
        subjects.append(email.message_from_bytes(item[1])["Subject"])
assert subjects == ["one", "two", "three"], subjects

typ, _ = m.uid("STORE", "1", "+FLAGS", "(\\Seen)")
assert typ == "OK"
typ, data = m.search(None, "UNSEEN")
assert data[0].split() == [b"2", b"3"], data

typ, data = m.uid("MOVE", "2", "Trash")
assert typ == "OK", data
typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
assert typ == "OK", data
typ, data = m.expunge()
assert typ == "OK", data

msg = b"From: %s\r\nTo: friend@remote.example\r\nSubject: sent copy\r\n\r\nkept in Sent\r\n" % user.encode()
typ, data = m.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg)
assert typ == "OK" and b"APPENDUID" in data[0], data

typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
assert typ == "OK" and b"MESSAGES 1" in data[0] and b"UNSEEN 0" in data[0], data
m.close()
m.logout()
print("ok")
