// vocab.cpp — reads tokenizer.ggml.* from a GGUF file into a Vocab, checking everything.
#include "tokenizer/vocab.h"

#include "common.h"
#include "gguf.h"

namespace ember {

namespace {

struct Reader {
    const GGUFFile& f;

    template <class... A>
    [[noreturn]] void error(const std::string& key, const A&... a) const {
        fail<GGUFError>("GGUF file '", f.path(), "': key '", key, "': ", a...);
    }
    const GGUFValue* array(const std::string& key, GGUFType elem, bool required) const {
        const GGUFKeyValue* kv = f.find(key);
        if (!kv) {
            if (required) error(key, "missing (the file has no tokenizer vocabulary)");
            return nullptr;
        }
        if (kv->value.type != GGUFType::ARRAY || kv->value.elem_type != elem)
            error(key, "must be an array of ", gguf_type_name(elem));
        return &kv->value;
    }
    std::string str(const std::string& key, const std::string& fallback) const {
        const GGUFKeyValue* kv = f.find(key);
        if (!kv) return fallback;
        if (kv->value.type != GGUFType::STRING) error(key, "must be a string");
        return std::string(kv->value.str);
    }
    int32_t id(const std::string& key, int32_t n_vocab) const {
        const GGUFKeyValue* kv = f.find(key);
        if (!kv) return -1;
        const GGUFValue& v = kv->value;
        if (v.type == GGUFType::STRING || v.type == GGUFType::ARRAY || v.type == GGUFType::FLOAT32 || v.type == GGUFType::FLOAT64)
            error(key, "must be an integer");
        if (v.i < 0 || v.i >= n_vocab) error(key, "token id ", v.i, " is outside the vocabulary (", n_vocab, " tokens)");
        return int32_t(v.i);
    }
    bool flag(const std::string& key, bool fallback) const {
        const GGUFKeyValue* kv = f.find(key);
        if (!kv) return fallback;
        if (kv->value.type != GGUFType::BOOL) error(key, "must be a bool");
        return kv->value.u != 0;
    }
};

}  // namespace

Vocab load_vocab(const GGUFFile& file) {
    Reader r{file};
    Vocab v;
    v.model = r.str("tokenizer.ggml.model", "");
    if (v.model == "gpt2") v.kind = Vocab::Kind::BPE;
    else if (v.model == "llama") v.kind = Vocab::Kind::SPM;
    else if (v.model.empty()) r.error("tokenizer.ggml.model", "missing (the file has no tokenizer)");
    else r.error("tokenizer.ggml.model", "tokenizer model '", v.model, "' is not supported (gpt2 or llama)");
    v.pre = r.str("tokenizer.ggml.pre", "default");

    const GGUFValue* tokens = r.array("tokenizer.ggml.tokens", GGUFType::STRING, true);
    if (tokens->count == 0 || tokens->count > uint64_t(INT32_MAX)) r.error("tokenizer.ggml.tokens", "bad token count ", tokens->count);
    const int32_t n = int32_t(tokens->count);
    v.tokens.reserve(size_t(n));
    v.token_to_id.reserve(size_t(n));
    for (int32_t i = 0; i < n; ++i) {
        v.tokens.emplace_back(tokens->strings[size_t(i)]);
        v.token_to_id.emplace(v.tokens.back(), i);  // on duplicates the first id wins, as in llama.cpp
    }

    v.types.assign(size_t(n), TokenType::Normal);
    if (const GGUFValue* types = r.array("tokenizer.ggml.token_type", GGUFType::INT32, false)) {
        if (types->count != uint64_t(n)) r.error("tokenizer.ggml.token_type", "has ", types->count, " entries for ", n, " tokens");
        for (int32_t i = 0; i < n; ++i) {
            const int64_t t = types->elem_int(uint64_t(i));
            if (t < 0 || t > 6) r.error("tokenizer.ggml.token_type", "token ", i, " has unknown type ", t);
            v.types[size_t(i)] = TokenType(t);
        }
    }
    if (const GGUFValue* scores = r.array("tokenizer.ggml.scores", GGUFType::FLOAT32, false)) {
        if (scores->count != uint64_t(n)) r.error("tokenizer.ggml.scores", "has ", scores->count, " entries for ", n, " tokens");
        v.scores.resize(size_t(n));
        for (int32_t i = 0; i < n; ++i) v.scores[size_t(i)] = float(scores->elem_float(uint64_t(i)));
    } else if (v.kind == Vocab::Kind::SPM) {
        v.scores.assign(size_t(n), 0.0f);
    }
    if (v.kind == Vocab::Kind::BPE) {
        const GGUFValue* merges = r.array("tokenizer.ggml.merges", GGUFType::STRING, true);
        v.merge_rank.reserve(size_t(merges->count));
        for (uint64_t i = 0; i < merges->count; ++i) {
            std::string_view m = merges->strings[i];
            // "left right": byte-level pieces spell a space as U+0120, so the first raw space
            // separates the two (searching from 1 keeps a one-byte " " piece on the left)
            const size_t sp = m.find(' ', 1);
            if (sp == std::string_view::npos) r.error("tokenizer.ggml.merges", "merge ", i, " ('", std::string(m), "') has no space");
            v.merge_rank.emplace(std::make_pair(std::string(m.substr(0, sp)), std::string(m.substr(sp + 1))), int32_t(i));
        }
    }

    v.bos_id = r.id("tokenizer.ggml.bos_token_id", n);
    v.eos_id = r.id("tokenizer.ggml.eos_token_id", n);
    v.unk_id = r.id("tokenizer.ggml.unknown_token_id", n);
    v.pad_id = r.id("tokenizer.ggml.padding_token_id", n);
    v.eot_id = r.id("tokenizer.ggml.eot_token_id", n);
    // llama.cpp's defaults: SentencePiece vocabularies add BOS and a space prefix unless told not to.
    const bool spm = v.kind == Vocab::Kind::SPM;
    v.add_bos = r.flag("tokenizer.ggml.add_bos_token", spm) && v.bos_id >= 0;
    v.add_eos = r.flag("tokenizer.ggml.add_eos_token", false) && v.eos_id >= 0;
    v.add_space_prefix = r.flag("tokenizer.ggml.add_space_prefix", spm);
    return v;
}

}  // namespace ember
