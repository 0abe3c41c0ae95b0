"""Write the generated OpenAPI document: `python -m services.measures.openapi`."""

import json
from pathlib import Path

from shared.config import Settings

from .app import create_app

if __name__ == "__main__":
    spec = create_app(Settings()).test_client().get("/openapi.json").json
    path = Path(__file__).parent / "openapi.json"
    path.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
