"""The fake Slack lives in the package now (``sandbox/slack.py``: the sandbox's workspace is built on it);
this module keeps the tests' import path."""

from sandbox.slack import *  # noqa: F403
from sandbox.slack import Call, Edit, FakeSlack, Message, sign_request

__all__ = ["Call", "Edit", "FakeSlack", "Message", "sign_request"]
