"""A synchronous client for the app in process (Starlette's TestClient wants ``httpx2``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from starlette.types import ASGIApp


class AppClient:
    """``get`` requests answered by ``app`` itself, through httpx's ASGI transport."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def get(self, path: str, params: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, params, headers)

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None,
                content: bytes | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fewsmap.test",
                                         timeout=60) as client:
                return await client.request(method, path, params=params, headers=headers,
                                            content=content)

        return asyncio.run(call())
