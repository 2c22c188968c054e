"""The response_format canary: does the endpoint really constrain output to the schema it is sent?

Some OpenAI-compatible servers accept ``response_format`` and ignore it (llama.cpp's server ignores
the flat ``{type: json_schema, schema}`` form, for one), answering HTTP 200 with whatever the model
wrote. Every structured call would then fail as "invalid JSON" one by one, looking like a bad model.
The canary asks for prose ("say hello") under a schema whose fields the prose cannot contain by
chance: only a server that turns the schema into a grammar (or a strict decoder) passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from graph.llm import LlmClient, LlmError, LlmOutputError
from prompts.outputs import LlmOutput
from prompts.registry import render_prompt

CanaryVerdict = Literal["honoured", "ignored", "unreachable"]


class CanaryReply(LlmOutput):
    marker: Literal["exops-canary-7f3a"] = Field(description="Always exactly exops-canary-7f3a.")
    greeting: str
    words: int = Field(description="How many words the greeting has.")


@dataclass(frozen=True)
class CanaryResult:
    verdict: CanaryVerdict
    detail: str


async def canary(client: LlmClient) -> CanaryResult:
    """``honoured``: a schema-valid object came back; ``ignored``: HTTP 200 but not the schema;
    ``unreachable``: the request itself failed (the detail says why)."""
    try:
        reply = await client.structured(render_prompt("eval_canary"), CanaryReply)
    except LlmOutputError as exc:
        return CanaryResult("ignored", f"{client.model} answered outside the schema ({exc.reason}): {exc}")
    except LlmError as exc:
        return CanaryResult("unreachable", str(exc))
    return CanaryResult("honoured", f"{client.model} returned {reply.value.model_dump_json()}")
