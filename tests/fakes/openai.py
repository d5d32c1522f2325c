"""The fake OpenAI lives in the package now (``sandbox/fake_openai.py``: the sandbox's demo model is built
on it); this module keeps the tests' import path."""

from sandbox.fake_openai import *  # noqa: F403
from sandbox.fake_openai import FakeOpenAI, Reply

__all__ = ["FakeOpenAI", "Reply"]
