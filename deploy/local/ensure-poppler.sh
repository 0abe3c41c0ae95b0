#!/usr/bin/env bash
# poppler-utils (pdftoppm, pdftotext) for the billing tests, which turn the invoice PDF into an
# image and read its text back (services/billing/tests/test_invoice_pdf.py). From Debian's own
# package, as ensure-chromium.sh does for the browser. Idempotent: does nothing when present.
set -euo pipefail
if command -v pdftoppm >/dev/null && command -v pdftotext >/dev/null; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" poppler-utils
pdftoppm -v 2>&1 | head -1
