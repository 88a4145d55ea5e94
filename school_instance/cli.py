"""The school instance's command line (tenants come with the school-instance issue)."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Stuudium school instance: operations."""
