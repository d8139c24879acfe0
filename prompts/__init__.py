"""Prompt templates as TOML data files; loaded and validated by ``assistant.prompts``."""
