"""Paper Assistant: chat with a day's batch of paper abstracts."""

from assistant.offline import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"
