"""litellm, imported and configured once: the only module that imports it.

litellm takes seconds to import, and neither the fake models nor a model picker need it,
so it is imported on first use. Configured here: no banners on the user's terminal, no
tokenizer downloads, and the in-process llama.cpp models registered as litellm's custom
provider ``local``, so ``local/NAME`` streams through exactly the path hosted models take.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from assistant.llm.local import LOCAL_PROVIDER, local_stream

_litellm_module: ModuleType | None = None
_litellm_lock = threading.Lock()


def get_litellm() -> ModuleType:
    """litellm, configured for this project, with the ``local`` provider registered."""
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is not None:
            return _litellm_module
        import litellm
        from litellm import CustomLLM

        def whole_reply(model: str, messages: list[Any], params: dict[str, Any], timeout: Any, response: Any) -> Any:
            """A whole local reply filled into litellm's ``ModelResponse``."""
            pieces: list[str] = []
            final: dict[str, Any] = {}
            for chunk in local_stream(model, messages, params, timeout):
                pieces.append(chunk["text"])
                if chunk["is_finished"]:
                    final = chunk
            response.choices[0].message.content = "".join(pieces)
            response.choices[0].finish_reason = final.get("finish_reason", "stop")
            response.model = f"{LOCAL_PROVIDER}/{model}"
            response.usage = litellm.Usage(**final["usage"])
            return response

        class LocalProvider(CustomLLM):
            """litellm's door to the in-process llama.cpp models (``local/NAME``)."""

            def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
                return whole_reply(
                    model, messages, kwargs["optional_params"], kwargs.get("timeout"), kwargs["model_response"]
                )

            def streaming(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
                return local_stream(model, messages, kwargs["optional_params"], kwargs.get("timeout"))

        # Its "Give Feedback / Get Help" banners would land on the user's terminal.
        litellm.suppress_debug_info = True
        # Token counts must never download a tokenizer from the Hugging Face hub.
        litellm.disable_hf_tokenizer_download = True
        if not any(item["provider"] == LOCAL_PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map = [
                *litellm.custom_provider_map,
                {"provider": LOCAL_PROVIDER, "custom_handler": LocalProvider()},
            ]
            litellm.utils.custom_llm_setup()
        _litellm_module = litellm
        return litellm
