"""Which model serves a run: ``ModelSettings`` (with its fallback chain), its ``Price``, and
the named tiers (``TierModel``) a profile routes steps to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from keel.contracts._base import Strict


class Price(Strict):
    """USD per million tokens. Cached input defaults to the input price when not given."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per million tokens written to a prompt cache"
    )

    @property
    def cached_price(self) -> float:
        """USD per million cached input tokens (the input price when none is listed)."""
        if self.cached_input_per_mtok is None:
            return self.input_per_mtok
        return self.cached_input_per_mtok

    @property
    def cache_write_price(self) -> float:
        """USD per million tokens written to a prompt cache (input price when none is listed)."""
        if self.cache_write_per_mtok is None:
            return self.input_per_mtok
        return self.cache_write_per_mtok


ProviderName = Literal["openai", "anthropic"]
"""The wire a model is reached by: OpenAI chat completions, or Anthropic Messages."""


class FallbackModel(Strict):
    """A model of a fallback chain; unset fields are taken from the primary model."""

    name: str = Field(min_length=1)
    provider: ProviderName | None = None
    base_url: str = ""
    api_key_env: str = ""
    price: Price | None = None
    pricing_provider: str = ""
    price_as: str = ""
    max_output_tokens: int | None = Field(default=None, ge=1, le=200_000)
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)


class ModelSettings(Strict):
    """Which model serves the run and how to reach it.

    ``base_url`` and ``api_key_env`` left empty are filled from the worker's environment
    (``KEEL_LLM_BASE_URL``, ``KEEL_LLM_API_KEY_ENV``) when the profile is resolved. The key
    itself never enters history: only the *name* of the environment variable does.
    """

    name: str = Field(
        min_length=1, description="model id, e.g. 'gpt-4o-mini' or 'sim/support_demo'"
    )
    provider: ProviderName = Field(
        default="openai",
        description="the wire: 'openai' (chat completions, also vLLM, Ollama, LiteLLM) or"
        " 'anthropic' (Messages API)",
    )
    base_url: str = ""
    api_key_env: str = ""
    max_output_tokens: int = Field(default=1024, ge=1, le=200_000)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    price: Price | None = Field(
        default=None, description="explicit price; else looked up in genai-prices at load"
    )
    pricing_provider: str = Field(
        default="", description="genai-prices provider id for the lookup, e.g. 'openai'"
    )
    price_as: str = Field(
        default="", description="price this model like another model id (e.g. a simulator)"
    )
    schedule_to_close_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="bound on one model call including retries"
    )
    fallbacks: list[FallbackModel] = Field(
        default_factory=list,
        description="models tried in order when this one's circuit is open or it fails for good",
    )
    max_response_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        le=1_900_000,
        description="a larger answer fails the call (payload_too_large) instead of being retried",
    )
    accepts_images: bool = Field(
        default=False,
        description="images from tool results are sent to the model (else a text marker)",
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="a message whose content is larger reaches the model cut to this size,"
        " with a marker naming the stored full content",
    )
    prompt_cache: bool = Field(
        default=True,
        description="mark the stable prefix for the provider's prompt cache (Anthropic"
        " cache_control breakpoints; OpenAI caches on its own and reports cached_tokens)",
    )
    min_cache_tokens: int | None = Field(
        default=None,
        ge=1,
        description="the shortest prefix the provider caches; unset: its documented minimum"
        " for the model (a shorter prefix is not marked: caching would silently do nothing)",
    )

    def served_by(self, fallback: FallbackModel) -> ModelSettings:
        """The full settings of a fallback model: its own fields over this model's."""
        update: dict[str, Any] = {
            key: value
            for key, value in fallback.model_dump(exclude_none=True).items()
            if value != "" and key != "price"
        }
        update["price"] = fallback.price
        update["fallbacks"] = []
        return self.model_copy(update=update)

    def chain(self) -> list[ModelSettings]:
        """This model, then its fallbacks, in the order they are tried."""
        return [self, *(self.served_by(fb) for fb in self.fallbacks)]

    def tier(self, tier: TierModel) -> ModelSettings:
        """The full settings of a tier: its fields over this model's, with its own fallbacks."""
        settings = self.served_by(tier)
        return settings.model_copy(update={"fallbacks": list(tier.fallbacks)})


class TierModel(FallbackModel):
    """A named tier (``[tiers.<name>]``): a model whose unset fields are the profile's
    ``[model]``'s, with a fallback chain of its own (``[[tiers.<name>.fallbacks]]``)."""

    fallbacks: list[FallbackModel] = Field(
        default_factory=list, description="models tried in order when this tier's model fails"
    )
