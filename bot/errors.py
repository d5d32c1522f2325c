"""Threadline's exceptions, and the one table that says what a user is told about each.

::

    ThreadlineError
    ├── ConfigError              a setting is missing or malformed (stops the process at start)
    │   └── ConfigErrors         every problem of one reading of the configuration, at once
    ├── ModelError               the model could not give an answer
    │   ├── ModelUnavailable     overloaded, rate limited, 5xx                       (retryable)
    │   │   └── ModelUnreachable connection refused, DNS, reset before an answer    (retryable)
    │   ├── ModelAuthError       401/403: the API key is wrong
    │   ├── ModelNotFound        404: the model name is wrong
    │   ├── ContextTooLong       the conversation does not fit the model's context
    │   ├── ContentFiltered      the provider's filter refused or cut the answer
    │   ├── ModelBadRequest      any other 4xx
    │   ├── EmptyAnswer          the model finished without writing anything
    │   └── ModelTimeout         first token (retryable), idle gap or whole answer took too long
    └── SlackError               Slack refused a call we cannot do without
        ├── CannotPost           the bot may not post in the channel (not_in_channel, ...)
        └── SlackUnreachable     no answer from Slack at all (network, DNS, proxy, 5xx)

Exceptions are translated once, at the boundary where they enter (``bot.llm`` for the ``openai``
package, ``bot.slack`` for ``slack_sdk``); everything inside speaks this hierarchy. ``user_message``
maps any exception to plain words for the thread. Users never see ``str(exc)`` or a stack trace: an
unexpected exception becomes "internal error" with a short correlation id that is also logged.
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
    """The model call failed. ``retryable`` errors may succeed if tried again."""

    retryable = False

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail or type(self).__name__)
        self.retry_after = retry_after


class ModelUnavailable(ModelError):
    retryable = True


class ModelUnreachable(ModelUnavailable):
    pass


class ModelAuthError(ModelError):
    pass


class ModelNotFound(ModelError):
    pass


class ContextTooLong(ModelError):
    pass


class ContentFiltered(ModelError):
    pass


class ModelBadRequest(ModelError):
    pass


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
    (
        ModelUnavailable,
        "The model is overloaded or rate limited right now. Please try again in a minute.",
    ),
    (
        ModelAuthError,
        "The model rejected my API key. An admin needs to check `OPENAI_API_KEY`.",
    ),
    (
        ModelNotFound,
        "The model name isn't known to the model server. An admin needs to check `OPENAI_MODEL`.",
    ),
    (
        ContextTooLong,
        "This conversation is too long for the model. Please start a new thread.",
    ),
    (ContentFiltered, "The model's content filter stopped this answer."),
    (ModelTimeout, "Stopped: the model took too long."),
    (ModelBadRequest, "The model server refused the request."),
    (EmptyAnswer, "The model finished without writing anything. Please try again or rephrase."),
)


def user_message(exc: BaseException, correlation_id: str) -> str:
    """Plain words for the thread about ``exc``; never the exception's own text."""
    for cls, text in _USER_MESSAGES:
        if isinstance(exc, cls):
            return text
    return f"Sorry, something went wrong on my side (error id `{correlation_id}`)."
