"""HTTP-level fakes of Slack and OpenAI for end-to-end tests (real clients talk to them over 127.0.0.1)."""

from .openai import FakeOpenAI, Reply
from .slack import Call, Edit, FakeSlack, Message, sign_request

__all__ = ["Call", "Edit", "FakeOpenAI", "FakeSlack", "Message", "Reply", "sign_request"]
