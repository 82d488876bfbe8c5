"""Encrypted intake for reports of sexual exploitation and abuse by peacekeepers."""

from intake.app import create_app

__all__ = ["create_app"]
