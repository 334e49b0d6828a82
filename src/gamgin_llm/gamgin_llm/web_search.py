"""Web search tool through a configurable HTTP search API (a SearXNG JSON endpoint, e.g.
``http://127.0.0.1:8888/search``). Off by default: the robot answers from its own model."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from gamgin_llm.tools import Tool, ToolResult


class WebSearch:
    def __init__(self, url: str, timeout_s: float = 5.0, max_results: int = 3) -> None:
        self.url, self.timeout_s, self.max_results = url, timeout_s, max_results

    def tool(self) -> Tool:
        return Tool("web_search", "search the web for current facts",
                    {"type": "object", "additionalProperties": False, "required": ["query"],
                     "properties": {"query": {"type": "string"}}}, self.search)

    def search(self, args: dict[str, Any]) -> ToolResult:
        try:
            r = httpx.get(self.url, params={"q": args["query"], "format": "json"},
                          timeout=self.timeout_s)
            r.raise_for_status()
            results = r.json().get("results", [])
        except (httpx.HTTPError, ValueError) as exc:
            return {"ok": False, "message": f"search failed: {type(exc).__name__}: {exc}"}
        top = [f"{x.get('title', '')}: {x.get('content', '')}".strip()[:300]
               for x in results[: self.max_results]]
        return {"ok": bool(top), "message": " | ".join(top) if top else "no results"}
