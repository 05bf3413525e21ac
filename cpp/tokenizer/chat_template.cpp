// chat_template.cpp — detection by marker strings and the four renderers.
#include "tokenizer/chat_template.h"

#include "common.h"

namespace ember {

const char* chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::ChatML: return "chatml";
        case ChatFormat::Llama3: return "llama3";
        case ChatFormat::Gemma: return "gemma";
        case ChatFormat::Mistral: return "mistral";
    }
    return "?";
}

ChatFormat detect_chat_format(std::string_view t) {
    auto has = [t](const char* s) { return t.find(s) != std::string_view::npos; };
    if (t.empty()) fail<ArgumentError>("the model has no chat template (tokenizer.chat_template)");
    if (has("<|im_start|>")) return ChatFormat::ChatML;
    if (has("<|start_header_id|>")) return ChatFormat::Llama3;
    if (has("<start_of_turn>")) return ChatFormat::Gemma;
    if (has("[INST]")) return ChatFormat::Mistral;
    fail<ArgumentError>("unrecognized chat template (known: ChatML, Llama 3, Gemma, Mistral); "
                        "use the Python package, which renders any template with Jinja2");
}

// Jinja's `| trim`: strip leading and trailing whitespace.
static std::string trim(const std::string& s) {
    const char* ws = " \t\n\r\f\v";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

static void check_role(const ChatMessage& m) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
        fail<ArgumentError>("chat message role must be system, user or assistant, got '", m.role, "'");
}

// Formats without a system role fold a leading system message into the first user turn:
// returns the index of the first message to render and sets the text to prepend.
static size_t fold_system(const std::vector<ChatMessage>& messages, std::string* prefix) {
    prefix->clear();
    if (messages.empty() || messages[0].role != "system") return 0;
    *prefix = messages[0].content + "\n\n";
    return 1;
}

std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const std::string& bos, const std::string& eos) {
    for (const ChatMessage& m : messages) check_role(m);
    std::string out;
    switch (f) {
        case ChatFormat::ChatML:
            for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
            if (add_generation_prompt) out += "<|im_start|>assistant\n";
            break;
        case ChatFormat::Llama3:
            out += bos;
            for (const ChatMessage& m : messages)
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
            if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
            break;
        case ChatFormat::Gemma: {
            out += bos;
            std::string prefix;
            for (size_t i = fold_system(messages, &prefix); i < messages.size(); ++i) {
                const ChatMessage& m = messages[i];
                const std::string role = m.role == "assistant" ? "model" : m.role;
                out += "<start_of_turn>" + role + "\n" + prefix + trim(m.content) + "<end_of_turn>\n";
                prefix.clear();
            }
            if (add_generation_prompt) out += "<start_of_turn>model\n";
            break;
        }
        case ChatFormat::Mistral: {
            // [INST] user [/INST]assistant</s>, with a system message folded into the first user turn.
            out += bos;
            std::string prefix;
            for (size_t i = fold_system(messages, &prefix); i < messages.size(); ++i) {
                const ChatMessage& m = messages[i];
                if (m.role == "user") out += "[INST] " + prefix + m.content + " [/INST]";
                else if (m.role == "assistant") out += m.content + eos;
                else fail<ArgumentError>("the Mistral format allows a system message only first");
                prefix.clear();
            }
            break;
        }
    }
    return out;
}

}  // namespace ember
