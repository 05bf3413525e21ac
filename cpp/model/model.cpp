// model.cpp — loading: open and validate the file, read the vocabulary, the hyper-parameters
// and the tensor views. Nothing is dequantized or copied but the small vectors.
#include "model/model.h"

#include <chrono>

#include "common.h"
#include "quants/dispatch.h"

namespace ember {

std::shared_ptr<const Model> Model::load(const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<Model> m(new Model());
    m->file_ = GGUFFile::open(path);
    const GGUFFile& f = *m->file_;
    // Hyper-parameters first: a file of an unsupported architecture should say so, not
    // complain about its vocabulary.
    m->hp_ = load_hparams(f);
    m->tok_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(f));
    m->hp_.n_vocab = m->tok_->n_vocab();
    load_weights(f, m->hp_, m->w_);
    pack_weights(m->w_, kernels(), *f.mapping());
    if (const GGUFKeyValue* t = f.find("tokenizer.chat_template"); t && t->value.type == GGUFType::STRING)
        m->chat_template_ = std::string(t->value.str);
    m->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return m;
}

std::string Model::name() const {
    if (const GGUFKeyValue* n = file_->find("general.name"); n && n->value.type == GGUFType::STRING && !n->value.str.empty())
        return std::string(n->value.str);
    const std::string& p = file_->path();
    const size_t slash = p.find_last_of('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

uint64_t Model::n_params() const {
    uint64_t n = 0;
    for (const GGUFTensorInfo& t : file_->tensors()) n += uint64_t(t.n_elements);
    return n;
}

}  // namespace ember
