"""Drives postamt with Python's smtplib, as a mail client and as another MTA would.

Arguments: submission port, submissions port, smtp port, password.
"""
import smtplib
import ssl
import sys
from email.message import EmailMessage

submission, submissions, smtp_port, password = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def message(subject, sender="bob@example.test", to="alice@example.test"):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hello from smtplib.\n.leading dot line\n")
    return msg


# Port 587: STARTTLS, then AUTH (smtplib picks PLAIN or LOGIN from the EHLO list).
with smtplib.SMTP("127.0.0.1", submission, timeout=30) as s:
    s.ehlo("client.example")
    assert not s.has_extn("auth"), "AUTH must not be offered before TLS"
    s.starttls(context=ctx)
    s.ehlo("client.example")
    assert "PLAIN" in s.esmtp_features["auth"].upper()
    s.login("bob@example.test", password)
    refused = s.send_message(message("via 587"))
    assert refused == {}, refused

# Port 465: implicit TLS, AUTH LOGIN forced.
with smtplib.SMTP_SSL("127.0.0.1", submissions, context=ctx, timeout=30) as s:
    s.ehlo("client.example")
    s.user, s.password = "bob@example.test", password
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, (code, resp)
    s.send_message(message("via 465"))
    try:
        s.send_message(message("forged", sender="alice@example.test"))
        raise AssertionError("forged sender accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 550, e

# Port 25: another server delivering, no AUTH.
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    s.ehlo("mta.remote.example")
    s.send_message(message("via 25", sender="someone@remote.example"))
    s.send_message(message("via 25 to alias", sender="someone@remote.example", to="alice.alias@example.test"))
    try:
        s.sendmail("someone@remote.example", ["victim@elsewhere.example"], b"Subject: relay\r\n\r\nx\r\n")
        raise AssertionError("relayed")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["victim@elsewhere.example"][0] == 554, e

print("ok")
