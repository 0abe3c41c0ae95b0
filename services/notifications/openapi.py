"""Write the service's OpenAPI document to `services/notifications/openapi.json`:

python -m services.notifications.openapi
"""

import json
from pathlib import Path

from shared.config import Settings

from .app import create_app

TARGET = Path(__file__).with_name("openapi.json")


def main() -> int:
    spec = create_app(Settings()).test_client().get("/openapi.json").json
    TARGET.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
