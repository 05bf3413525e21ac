// model.h — a loaded model: the GGUF mapping, hyper-parameters, weight views and tokenizer.
// Immutable once loaded, so one Model can serve any number of contexts and threads.
#pragma once

#include <memory>
#include <string>

#include "gguf.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace ember {

class Model {
public:
    // Throws FileError (cannot open), GGUFError (not a valid or supported model).
    static std::shared_ptr<const Model> load(const std::string& path);

    const HParams& hparams() const { return hp_; }
    const Weights& weights() const { return w_; }
    const Tokenizer& tokenizer() const { return *tok_; }
    const GGUFFile& file() const { return *file_; }
    const std::string& chat_template() const { return chat_template_; }  // "" when the file has none
    std::string name() const;            // general.name, else the file's base name
    double load_seconds() const { return load_seconds_; }
    uint64_t n_params() const;

    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

private:
    Model() = default;
    std::shared_ptr<GGUFFile> file_;
    HParams hp_;
    Weights w_;
    std::unique_ptr<Tokenizer> tok_;
    std::string chat_template_;
    double load_seconds_ = 0;
};

}  // namespace ember
