"""Serve the apps with Werkzeug's threaded development server."""

from __future__ import annotations

import sys
import threading

from werkzeug.serving import make_server


def main() -> None:
    """python -m deploy.dev.serve idp PORT | python -m deploy.dev.serve school PORT [PORT ...]"""
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    if name == "idp":
        from idp import create_app
    elif name == "school":
        from school_instance import create_app  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown app {name}")
    app = create_app()
    # One deployment, several schools: the same app answers on every school's port.
    servers = [make_server("localhost", port, app, threaded=True) for port in ports]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
