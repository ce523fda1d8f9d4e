"""Event-loop selection for process entrypoints."""

from __future__ import annotations

import asyncio
import sys


def install_uvloop() -> bool:
    """Make uvloop the event loop policy when it is installed; returns whether it is.

    Call once, before the entrypoint starts its loop. aiohttp runs unchanged on
    either loop; uvloop only makes it faster.
    """
    if sys.platform == "win32":
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
