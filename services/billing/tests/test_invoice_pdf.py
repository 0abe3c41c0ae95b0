"""The invoice PDF, rendered by the service, turned into an image (poppler's pdftoppm) saved
under tests/artifacts/, and its text (pdftotext) checked: practice, payer, lines, totals and
the VAT statement. poppler-utils is installed by `make test` (deploy/local/ensure-poppler.sh)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.billing.domain.fees import VAT_EXEMPT_STATEMENT
from shared.auth import service_token

from .conftest import Diary, charges_of
from .test_service import FIRST, setup_practice

ARTIFACTS = Path(__file__).resolve().parents[3] / "tests" / "artifacts"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run `make test` (or deploy/local/ensure-poppler.sh)")
    return path


def image_and_text(pdf_bytes: bytes) -> str:
    """Save the PDF and a PNG of its page under tests/artifacts/; return its text."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "billing-invoice.pdf"
    pdf.write_bytes(pdf_bytes)
    png = ARTIFACTS / "billing-invoice"
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", "80", "-singlefile", str(pdf), str(png)], check=True
    )
    assert png.with_suffix(".png").stat().st_size > 10_000
    return subprocess.run(
        [_tool("pdftotext"), "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_the_invoice_pdf_names_practice_payer_lines_totals_and_vat(
    client, auth_header, settings, running, clock
):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    r = client.put(
        "/clients/c1/funding",
        headers=h,
        json={
            "payer": "self",
            "reduced_fee": {"amount": 6000, "currency": "GBP"},
            "reduced_fee_reason": "student",
        },
    )
    assert r.status_code == 200, r.json
    Diary(settings, "c1").course(FIRST, count=3, dna=(2,))
    charges_of(client, h, "c1", 3)
    clock.now = datetime(2026, 3, 31, 9, tzinfo=UTC)
    issued = client.post("/invoices", headers=h, json={"client_id": "c1"})
    assert issued.status_code == 201, issued.json
    answer = client.get(issued.headers["Location"], headers={**h, "Accept": "application/pdf"})
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert answer.data.startswith(b"%PDF")
    flat = " ".join(image_and_text(answer.data).split())
    assert settings.practice_name in flat
    assert "Invoice INV-000001" in flat and "Bill to Emma Stone" in flat
    assert "2 March 2026 Therapy session £60.00 £0.00 £60.00" in flat
    assert "9 March 2026 Non-attendance: Therapy session £45.00 £0.00 £45.00" in flat
    assert "Total £165.00" in flat and "Amount due £165.00" in flat
    assert " ".join(VAT_EXEMPT_STATEMENT.split()) in flat
    # notifications fetches it with a service token, to e-mail it to the payer
    token = service_token(settings.token_secret, "notifications", ttl_seconds=60)
    service = {"Authorization": f"Bearer {token}", "Accept": "application/pdf"}
    fetched = client.get(issued.headers["Location"], headers=service)
    assert fetched.status_code == 200 and fetched.data.startswith(b"%PDF")
    json_answer = client.get(issued.headers["Location"], headers=h)
    assert json_answer.json["total"]["amount"] == 16500
