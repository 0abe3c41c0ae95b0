"""The development sinks `make up` runs: a real SMTP conversation and a real HTTP POST
reach them, and they write what they received under the run folder."""

import json
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import requests

from testkit.procs import free_port


def start(module, port, run_dir):
    env = {**os.environ, "RAPPORT_RUN_DIR": str(run_dir), "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert "127.0.0.1" in proc.stdout.readline()  # it says where it listens once it does
    return proc


def test_devmail_keeps_each_message_as_a_file(tmp_path):
    port = free_port()
    proc = start("services.notifications.devmail", port, tmp_path)
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@rapport.test", "b@client.test", "hello"
        msg.set_content("body")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(msg)
        files = list((tmp_path / "mail").glob("*.eml"))
        assert len(files) == 1 and b"Subject: hello" in files[0].read_bytes()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_devsms_records_a_text_once_per_idempotency_key(tmp_path):
    port = free_port()
    proc = start("services.notifications.devsms", port, tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/messages"
        body = {"to": "+447700900001", "body": "see you soon", "reference": "r1"}
        assert (
            requests.post(url, json=body, headers={"Idempotency-Key": "r1"}, timeout=5).status_code
            == 202
        )
        assert (
            requests.post(url, json=body, headers={"Idempotency-Key": "r1"}, timeout=5).status_code
            == 200
        )
        assert requests.post(url, json={"to": 7}, timeout=5).status_code == 400
        time.sleep(0.1)
        lines = (tmp_path / "sms" / "messages.jsonl").read_text().splitlines()
        assert [json.loads(line)["body"] for line in lines] == ["see you soon"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
