"""Outbound HTTP: the aiohttp dispatcher, its SSRF guard and request signing."""

from cadenza.adapters.http.dispatcher import HttpDispatcher
from cadenza.adapters.http.loop import install_uvloop
from cadenza.adapters.http.ssrf import AddressPolicy

__all__ = ["AddressPolicy", "HttpDispatcher", "install_uvloop"]
