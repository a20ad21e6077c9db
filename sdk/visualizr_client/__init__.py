"""Python SDK and command line of Visualizr (``visualizr-api.md``).

Sync: ``VisualizrClient``; asyncio: ``AsyncVisualizrClient``; results are msgspec Structs from
``visualizr_client.models``; errors derive from ``VisualizrError`` and are exported here.
"""

from visualizr_client._async_client import AsyncVisualizrClient
from visualizr_client._client import VisualizrClient
from visualizr_client._errors import (
    AuthenticationError,
    BadRequestError,
    CharacterNotFoundError,
    DatabaseUnavailableError,
    GenerationCancelledError,
    GenerationFailedError,
    GenerationTimeoutError,
    IdempotencyKeyReusedError,
    InsufficientGpuMemoryError,
    InsufficientStorageError,
    InvalidParametersError,
    InvalidPromptError,
    ModelLoadFailedError,
    ModelNotFoundError,
    NotFoundError,
    ObjectStoreUnavailableError,
    QueueFullError,
    RequestNotFoundError,
    RouteNotFoundError,
    UnexpectedResponseError,
    VisualizrAPIError,
    VisualizrConnectionError,
    VisualizrError,
    WebhookVerificationError,
)
from visualizr_client._webhooks import verify_webhook
from visualizr_client.models import (
    CancelledMessage,
    CompletedMessage,
    FailedMessage,
    GenerationAccepted,
    GenerationStatus,
    PreviewMessage,
    ProgressMessage,
    Quote,
    QuoteLimit,
    StreamMessage,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncVisualizrClient",
    "AuthenticationError",
    "BadRequestError",
    "CancelledMessage",
    "CompletedMessage",
    "DatabaseUnavailableError",
    "FailedMessage",
    "GenerationAccepted",
    "GenerationCancelledError",
    "GenerationFailedError",
    "GenerationStatus",
    "GenerationTimeoutError",
    "IdempotencyKeyReusedError",
    "InsufficientGpuMemoryError",
    "InsufficientStorageError",
    "InvalidParametersError",
    "InvalidPromptError",
    "ModelLoadFailedError",
    "ModelNotFoundError",
    "NotFoundError",
    "ObjectStoreUnavailableError",
    "PreviewMessage",
    "ProgressMessage",
    "QueueFullError",
    "Quote",
    "QuoteLimit",
    "RequestNotFoundError",
    "CharacterNotFoundError",
    "RouteNotFoundError",
    "StreamMessage",
    "UnexpectedResponseError",
    "VisualizrAPIError",
    "VisualizrClient",
    "VisualizrConnectionError",
    "VisualizrError",
    "WebhookVerificationError",
    "verify_webhook",
]
