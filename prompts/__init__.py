"""Prompts: versioned template files rendered from values, and the shapes LLM answers must take.

Sits between ``tools`` and ``graph``: it may read pack models, and knows nothing of LLM clients.
"""

from prompts.outputs import (
    UNKNOWN_TYPE,
    DraftArgument,
    DraftError,
    DraftStep,
    JudgeVerdict,
    LlmOutput,
    PlaybookDraft,
    SupervisorOpinion,
    TriageSummary,
    TypeClassification,
    classification_model,
    draft_to_playbook,
)
from prompts.registry import (
    PromptError,
    PromptTemplate,
    RenderedPrompt,
    get_prompt,
    list_prompts,
    load_prompts,
    prompt_variables,
    render_prompt,
    render_template,
)

__all__ = [
    "UNKNOWN_TYPE",
    "DraftArgument",
    "DraftError",
    "DraftStep",
    "JudgeVerdict",
    "LlmOutput",
    "PlaybookDraft",
    "PromptError",
    "PromptTemplate",
    "RenderedPrompt",
    "SupervisorOpinion",
    "TriageSummary",
    "TypeClassification",
    "classification_model",
    "draft_to_playbook",
    "get_prompt",
    "list_prompts",
    "load_prompts",
    "prompt_variables",
    "render_prompt",
    "render_template",
]
