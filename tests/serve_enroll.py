"""A serving process that enrolls a gallery folder through its own HTTP API, person by person:
what the crash suite kills with -9 to test serve's enroll (``python tests/serve_enroll.py DIR``,
the home from FACESEARCH_HOME). Prints the summed enroll reports as one JSON object."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from facesearch.gallery.engine import Gallery
from facesearch.serving.app import create_app
from tests.serving import free_port


def main(source: Path) -> None:
    gallery = Gallery(os.environ.get("FACESEARCH_HOME"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(gallery), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    enrolled = skipped = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
        for person in sorted(p for p in source.iterdir() if p.is_dir()):
            photos = sorted(person.iterdir())
            for start in range(0, len(photos), 4):  # a few photos a request, as a page would send them
                files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in photos[start : start + 4]]
                reply = client.post("/v1/enroll", data={"identity": person.name}, files=files)
                reply.raise_for_status()
                enrolled += reply.json()["enrolled"]
                skipped += reply.json()["skipped"]
    server.should_exit = True
    print(json.dumps({"enrolled": enrolled, "skipped": skipped}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(Path(sys.argv[1]))
