"""Write the committed OpenAPI document: `python -m services.records.openapi`."""

import json
from pathlib import Path

from shared.config import Settings

from .app import create_app

TARGET = Path(__file__).resolve().parent / "openapi.json"


def main() -> None:
    spec = create_app(Settings()).test_client().get("/openapi.json").get_json()
    TARGET.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
