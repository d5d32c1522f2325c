"""Threadline's exceptions, and the one table that says what a user is told about each.

::

    ThreadlineError
    ├── ConfigError              a setting is missing or malformed (stops the process at start)
    │   └── ConfigErrors         every problem of one reading of the configuration, at once
    ├── ModelError               the model could not give an answer
    │   ├── ModelUnavailable     the server could not answer now                      (retryable)
    │   │   ├── ModelUnreachable connection refused, DNS, connect timed out or lost   (retryable)
    │   │   ├── ModelRateLimited 429                                                  (retryable)
    │   │   ├── ModelOverloaded  503, 529, an "overloaded" error                      (retryable)
    │   │   ├── ModelServerError 500 and other 5xx, an error event inside the stream  (retryable)
    │   │   └── StreamCut        the stream broke or closed before the answer was complete (retryable)
    │   ├── ModelAuthError       401/403: the API key is wrong                        (admin)
    │   ├── QuotaExceeded        429 insufficient_quota: the account's plan or billing (admin)
    │   ├── ModelNotFound        the server does not serve OPENAI_MODEL (404, LiteLLM's 400) (admin)
    │   ├── ContextTooLong       the conversation does not fit the model's context
    │   ├── ContentFiltered      the provider's filter refused or cut the answer
    │   ├── MalformedReply       a reply that is not what the API promises (a garbage ``data:`` line)
    │   ├── ModelBadRequest      any other 4xx                                        (admin)
    │   │   ├── ModelEndpointNotFound  404 without a model named: OPENAI_BASE_URL is wrong (admin)
    │   │   └── ImagesNotSupported     the model takes no image input (asked again without them)
    │   │       └── ImageUnreadable    it refused this image (its format or content), not images
    │   ├── EmptyAnswer          the model finished without writing anything
    │   └── ModelTimeout         first token (retryable), idle gap or whole answer took too long
    └── SlackError               Slack refused a call we cannot do without
        ├── CannotPost           the bot may not post in the channel (not_in_channel, ...)
        └── SlackUnreachable     no answer from Slack at all (network, DNS, proxy, 5xx)

``retryable``: tried again at once within the same answer (``bot.model.retry``). ``fixable_by_retry``:
False ("admin") when the same request will fail the same way until an admin changes something, so a
Retry button would only fail again. A ``ModelError`` made from a server's answer keeps the server's own
words (``server_message``: one line, bounded, secrets redacted) and its request id; both are part of
``str(err)`` for the logs and ``bot check``, never of what a user is shown.

Exceptions are translated once, at the boundary where they enter (``bot.model.errors`` for the
``openai`` package, ``bot.slack`` for ``slack_sdk``); everything inside speaks this hierarchy.
``user_message`` maps any exception to plain words for the thread. Users never see ``str(exc)`` or a
stack trace: an unexpected exception becomes "internal error" with a short correlation id that is also
logged.
"""

from __future__ import annotations


class ThreadlineError(Exception):
    """Base of every error Threadline raises on purpose."""


class ConfigError(ThreadlineError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem

    @property
    def errors(self) -> list[ConfigError]:
        """Every problem this error stands for (one here; all of them for ``ConfigErrors``)."""
        return [self]


class ConfigErrors(ConfigError):
    """Several configuration problems found in one reading, so an operator fixes them in one go.
    ``variable`` and ``problem`` are the first one's (code that expects a single ``ConfigError``
    still works); ``errors`` lists them all, ``str()`` gives one line each."""

    def __init__(self, errors: list[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        super().__init__(errors[0].variable, errors[0].problem)
        self._errors = [e for err in errors for e in err.errors]
        self.args = ("\n".join(f"{e.variable}: {e.problem}" for e in self._errors),)

    @property
    def errors(self) -> list[ConfigError]:
        return list(self._errors)


class ModelError(ThreadlineError):
    """The model call failed. ``retryable`` errors may succeed if tried again at once;
    ``fixable_by_retry`` is False when only an admin can make the request succeed."""

    retryable = False
    fixable_by_retry = True

    def __init__(
        self,
        detail: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        server_message: str | None = None,
        server_request_id: str | None = None,
    ) -> None:
        text = detail or type(self).__name__
        if server_message:
            text += f": {server_message}"
        if server_request_id:
            text += f" (server request id {server_request_id})"
        super().__init__(text)
        self.detail = detail
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when the server answered with one
        self.server_message = server_message
        self.server_request_id = server_request_id


class ModelUnavailable(ModelError):
    retryable = True


class ModelUnreachable(ModelUnavailable):
    pass


class ModelRateLimited(ModelUnavailable):
    pass


class ModelOverloaded(ModelUnavailable):
    pass


class ModelServerError(ModelUnavailable):
    pass


class StreamCut(ModelUnavailable):
    pass


class ModelAuthError(ModelError):
    fixable_by_retry = False


class QuotaExceeded(ModelError):
    fixable_by_retry = False


class ModelNotFound(ModelError):
    fixable_by_retry = False


class ContextTooLong(ModelError):
    """Raised, never retried as is: the caller trims the prompt and asks again. When nothing is left to
    trim, a Retry of the same conversation fails the same way."""

    fixable_by_retry = False


class ContentFiltered(ModelError):
    pass


class MalformedReply(ModelError):
    pass


class ModelBadRequest(ModelError):
    fixable_by_retry = False


class ModelEndpointNotFound(ModelBadRequest):
    pass


class ImagesNotSupported(ModelBadRequest):
    """The model refused the request's image parts (a text-only model): the caller asks again
    without them and says so."""


class ImageUnreadable(ImagesNotSupported):
    """The model refused an image it was sent (a format it does not take, a corrupt file), not images
    as such: asked again without it, but later images are still sent."""


class EmptyAnswer(ModelError):
    """The stream ended normally but carried no text (nothing to show but a placeholder)."""


class ModelTimeout(ModelError):
    """The model took too long. ``phase`` is "first token", "idle" or "answer". Only a first-token
    timeout is retryable (a read timeout before any text: nothing shown is lost); after text, or
    for the whole answer, the partial answer is kept and marked."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"{phase} timeout after {seconds:g}s")
        self.phase = phase
        self.seconds = seconds
        self.retryable = phase == "first token"


class SlackError(ThreadlineError):
    """A Slack Web API call failed with ``error`` (Slack's error code)."""

    def __init__(
        self, method: str, error: str, *, retry_after: float | None = None, transient: bool = False
    ) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error
        self.retry_after = retry_after
        # A server error or a lost connection: the call may or may not have taken effect.
        self.transient = transient


class CannotPost(SlackError):
    """The bot may not post in the channel (not a member, archived, restricted)."""


class SlackUnreachable(SlackError):
    """Slack could not be reached (connection refused, DNS, timeout, TLS) or answered only server
    errors: a network or Slack problem, not a configuration error."""

    def __init__(self, method: str, cause: str, url: str) -> None:
        super().__init__(method, cause, transient=True)
        self.url = url


# One table, most specific class first: what the person in the thread is told.
_USER_MESSAGES: tuple[tuple[type[BaseException], str], ...] = (
    (ModelUnreachable, "I couldn't reach the model server. Please try again in a minute."),
    (ModelRateLimited, "The model server is rate limiting me right now. Please try again in a minute."),
    (ModelOverloaded, "The model server is overloaded right now. Please try again in a minute."),
    (ModelServerError, "The model server had an internal error. Please try again in a minute."),
    (StreamCut, "The model server broke off the answer before it was complete. Please try again."),
    (ModelUnavailable, "The model server couldn't answer right now. Please try again in a minute."),
    (
        ModelAuthError,
        "The model rejected my API key. An admin needs to check `OPENAI_API_KEY`.",
    ),
    (
        QuotaExceeded,
        "The model account has run out of quota. An admin needs to check its plan and billing.",
    ),
    (
        ModelNotFound,
        "The model name isn't known to the model server. An admin needs to check `OPENAI_MODEL`.",
    ),
    (
        ModelEndpointNotFound,
        "The model server has no chat API at the configured address. "
        "An admin needs to check `OPENAI_BASE_URL`.",
    ),
    (
        ContextTooLong,
        "This conversation is too long for the model. Please start a new thread.",
    ),
    (ContentFiltered, "The model's content filter stopped this answer."),
    (MalformedReply, "The model server sent a reply I couldn't read. Please try again later."),
    (ModelTimeout, "Stopped: the model took too long."),
    (ImageUnreadable, "The model couldn't read that image. Please try a PNG or JPEG, or ask in words."),
    (ImagesNotSupported, "This model can't read images. Please ask in words."),
    (ModelBadRequest, "The model server refused the request."),
    (EmptyAnswer, "The model finished without writing anything. Please try again or rephrase."),
)

# Shown under an answer the server ended at its length limit (``finish_reason: "length"``).
TRUNCATED_NOTE = (
    "This answer was cut off: it reached the length limit for an answer (`BOT_MAX_ANSWER_TOKENS`) "
    "or the model's context."
)


def user_message(exc: BaseException, correlation_id: str) -> str:
    """Plain words for the thread about ``exc``; never the exception's own text."""
    for cls, text in _USER_MESSAGES:
        if isinstance(exc, cls):
            return text
    return f"Sorry, something went wrong on my side (error id `{correlation_id}`)."
