"""AI providers: one interface (`AIProvider`), three implementations (local ONNX, OpenAI-compatible, Ollama),
chosen by APERTURE_EMBEDDING_PROVIDER through the `AIProviderResource`."""

from aperture_resources.ai.base import (
    AIProvider,
    ChatUnavailableError,
    InputError,
    ProviderError,
    TransientError,
)
from aperture_resources.ai.batching import embed_batches
from aperture_resources.ai.resource import AIProviderResource

__all__ = [
    "AIProvider",
    "AIProviderResource",
    "ChatUnavailableError",
    "InputError",
    "ProviderError",
    "TransientError",
    "embed_batches",
]
