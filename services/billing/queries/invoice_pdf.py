"""The invoice as a PDF (reportlab): the practice, the payer it is addressed to, each line
(date, what, net, VAT, amount), the totals, what is still owed and the VAT statement. Never
anything clinical: a line names the kind of session and its date only."""

from __future__ import annotations

from datetime import date
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ..domain.money import Money


def _money(d: dict) -> str:
    return Money.of(d).text()


def _day(text: str) -> str:
    return date.fromisoformat(text).strftime("%-d %B %Y")


def _para(text: str, style) -> Paragraph:
    return Paragraph(escape(text), style)


def _lines_table(invoice: dict) -> Table:
    rows = [["Date", "Description", "Net", "VAT", "Amount"]]
    rows += [
        [
            _day(line["session_date"]),
            line["description"],
            _money(line["net"]),
            _money(line["vat"]),
            _money(line["gross"]),
        ]
        for line in invoice["lines"]
    ]
    table = Table(rows, colWidths=[32 * mm, 70 * mm, 24 * mm, 20 * mm, 26 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                ("LINEBELOW", (0, -1), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    return table


def _totals_table(invoice: dict) -> Table:
    rows = [
        ["Net", _money(invoice["net"])],
        ["VAT", _money(invoice["vat"])],
        ["Total", _money(invoice["total"])],
    ]
    if invoice["credit_applied"]["amount"]:
        rows.append(["Credit applied", "-" + _money(invoice["credit_applied"])])
    for note in invoice.get("credit_notes", []):
        rows.append([f"Credit note {note['number']}", "-" + _money(note["amount"])])
    rows.append(["Amount due", _money(invoice["outstanding"])])
    table = Table(rows, colWidths=[40 * mm, 30 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
            ]
        )
    )
    return table


def render_invoice(invoice: dict, *, practice: str) -> bytes:
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["Italic"]
    to = invoice["addressed_to"]
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Invoice {invoice['number']}",
        author=practice,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
    )
    story = [
        _para(practice, styles["Title"]),
        _para(f"Invoice {invoice['number']}", styles["Heading2"]),
        _para(f"Issued {_day(invoice['issued_on'])}", body),
        _para(
            f"For sessions from {_day(invoice['period_from'])} to {_day(invoice['period_to'])}",
            body,
        ),
        Spacer(1, 6 * mm),
        _para("Bill to", styles["Heading4"]),
        _para(to["name"], body),
    ]
    if to.get("reference"):
        story.append(_para(f"Reference: {to['reference']}", body))
    if to.get("email"):
        story.append(_para(to["email"], body))
    story += [
        Spacer(1, 6 * mm),
        _lines_table(invoice),
        Spacer(1, 4 * mm),
        _totals_table(invoice),
        Spacer(1, 8 * mm),
        _para(invoice["vat_statement"], small),
        _para(f"Please quote {invoice['number']} with your payment.", small),
    ]
    doc.build(story)
    return buffer.getvalue()
