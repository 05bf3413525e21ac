// chat_template.h — the chat formats `main` can render without a Jinja engine.
//
// A GGUF carries its chat template as Jinja text (tokenizer.chat_template). Python renders it
// with Jinja2 (python/ember/chat.py); the C++ side recognizes the common formats from marker
// strings in the template and renders them directly, and refuses a template it does not know
// rather than guessing (a wrong template silently degrades every answer).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ember {

enum class ChatFormat { ChatML, Llama3, Gemma, Mistral };

struct ChatMessage {
    std::string role;     // "system", "user", "assistant"
    std::string content;
};

const char* chat_format_name(ChatFormat f);
// Throws ArgumentError for an empty or unrecognized template.
ChatFormat detect_chat_format(std::string_view jinja_template);
// The prompt text for the messages; bos is the BOS token's text for formats that write it
// (Llama 3, Gemma, Mistral) — pass "" when the tokenizer adds BOS itself.
std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const std::string& bos = "", const std::string& eos = "");

}  // namespace ember
