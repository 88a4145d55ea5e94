"""Serve one of the apps with Werkzeug's threaded development server."""

from __future__ import annotations

import sys

from werkzeug.serving import run_simple


def main() -> None:
    """python -m deploy.dev.serve idp PORT"""
    name, port = sys.argv[1], int(sys.argv[2])
    if name != "idp":
        raise SystemExit(f"unknown app {name}")
    from idp import create_app

    run_simple("localhost", port, create_app(), threaded=True, use_reloader=False,
               use_debugger=False)


if __name__ == "__main__":
    main()
