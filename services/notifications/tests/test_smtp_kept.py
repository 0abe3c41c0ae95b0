"""Each sender thread keeps its SMTP connection for its next message (channels.EmailChannel):
against a real SMTP server (aiosmtpd), counting the connections it was opened."""

from __future__ import annotations

import threading

import pytest

from services.notifications.application.config import NotifyConfig
from services.notifications.devmail import MailSink, _Handler
from services.notifications.workers.channels import (
    EmailChannel,
    PermanentError,
    Rendered,
    TransientError,
)
from testkit.procs import free_port

HELLO = Rendered("Your appointment", "See you on Tuesday.")


class Counted(MailSink):
    """The dev sink, counting each EHLO: one per connection opened by smtplib."""

    def __init__(self, port: int):
        super().__init__(port)
        self.connections = 0
        sink = self

        class Handler(_Handler):
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                sink.connections += 1
                session.host_name = hostname
                return responses

        self._handler = Handler(self)

    def start(self) -> Counted:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self


@pytest.fixture
def counted():
    sink = Counted(free_port()).start()
    yield sink
    sink.stop()


def _channel(sink: MailSink) -> EmailChannel:
    return EmailChannel(NotifyConfig(smtp_port=sink.port, smtp_timeout=2.0))


def test_a_thread_sends_its_messages_on_one_connection(counted):
    channel = _channel(counted)
    for i in range(3):
        channel.send(f"confirmation:s{i}:email", "c1@client.test", HELLO)
    assert len(counted.to("c1@client.test")) == 3
    assert counted.connections == 1
    channel.close()


def test_each_thread_has_a_connection_of_its_own(counted):
    channel = _channel(counted)
    errors: list = []

    def send(n: int) -> None:
        try:
            for i in range(2):
                channel.send(f"confirmation:t{n}-{i}:email", f"t{n}@client.test", HELLO)
        except Exception as err:  # the test's own failure, reported below
            errors.append(err)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert [len(counted.to(f"t{n}@client.test")) for n in range(3)] == [2, 2, 2]
    assert counted.connections == 3
    channel.close()


def test_a_connection_the_server_dropped_is_replaced_and_the_message_goes(counted):
    channel = _channel(counted)
    channel.send("confirmation:s1:email", "c1@client.test", HELLO)
    counted.stop()  # the server restarts: the kept connection is dead
    counted.start()
    channel.send("confirmation:s2:email", "c1@client.test", HELLO)
    assert len(counted.to("c1@client.test")) == 2
    assert counted.connections == 2
    channel.close()


def test_a_connection_kept_too_long_is_not_used(counted, monkeypatch):
    channel = _channel(counted)
    monkeypatch.setattr(EmailChannel, "KEEP_IDLE", 0.0)
    channel.send("confirmation:s1:email", "c1@client.test", HELLO)
    channel.send("confirmation:s2:email", "c1@client.test", HELLO)
    assert counted.connections == 2
    channel.close()


def test_a_refusal_drops_the_connection_and_the_next_message_opens_another(counted):
    channel = _channel(counted)
    counted.reject.add("gone@client.test")
    with pytest.raises(PermanentError, match="550"):
        channel.send("confirmation:s1:email", "gone@client.test", HELLO)
    channel.send("confirmation:s2:email", "c1@client.test", HELLO)
    assert len(counted.to("c1@client.test")) == 1
    assert counted.connections == 2
    channel.close()


def test_a_server_gone_for_good_is_a_transient_error(counted):
    channel = _channel(counted)
    channel.send("confirmation:s1:email", "c1@client.test", HELLO)
    counted.stop()
    with pytest.raises(TransientError):
        channel.send("confirmation:s2:email", "c1@client.test", HELLO)
    counted.start()  # for the fixture's stop


def _text(received: str) -> str:
    return received.replace("\r\n", "\n")  # as SMTP carried it, and the sink kept it


def test_a_message_reaches_the_server_whole_in_any_script_and_line_length(counted):
    """Mail is made with the email package's MIME classes (EmailChannel.build, issue 14): a
    subject and a display name outside ASCII arrive as written (RFC 2047 on the wire), a body
    as written (8bit) unless a line is longer than SMTP allows, then quoted-printable, and
    an attachment whole."""
    from services.notifications.workers.invoices import Attachment

    channel = _channel(counted)
    body = "Dear Zoë,\n\nYour session — Tuesday 10:00.\nhttps://meet.test/room-s1\n"
    channel.send("a:1", "Zoë Ørsted <zoe@client.test>", Rendered("Séance — Tuesday", body))
    long_line = "x" * 1200
    channel.send("a:2", "zoe@client.test", Rendered("Notes", f"{long_line}\nend\n"))
    pdf = Attachment("invoice-7.pdf", b"%PDF-1.4\n\x00\xff\xfe binary")
    channel.send("a:3", "zoe@client.test", Rendered("Invoice", "Attached.\n"), [pdf])
    channel.close()
    first, second, third = counted.to("zoe@client.test")
    assert first["Subject"] == "Séance — Tuesday"
    assert first["To"].addresses[0].display_name == "Zoë Ørsted"
    assert first["Content-Transfer-Encoding"] == "8bit"
    assert _text(first.get_content()) == body
    assert first["Message-ID"] and first["Date"] and first["X-Rapport-Notification"]
    assert second["Content-Transfer-Encoding"] == "quoted-printable"
    assert _text(second.get_content()) == f"{long_line}\nend\n"
    assert _text(third.get_body(("plain",)).get_content()) == "Attached.\n"
    (attached,) = third.iter_attachments()
    assert attached.get_filename() == "invoice-7.pdf"
    assert attached.get_content() == pdf.content
