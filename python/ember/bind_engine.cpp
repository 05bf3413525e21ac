// bind_engine.cpp — _core.Engine (a loaded model with its context) and _core.Generation, the
// layer under ember.Model. Thin: it converts arguments and results and releases the GIL for
// every computation. A mutex serializes calls into the context, so several Python threads
// (several streams) may use one Engine; each takes the GIL back only to hand over its result.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "common.h"
#include "context.h"
#include "generate.h"
#include "model/model.h"
#include "perplexity.h"
#include "quants/types.h"

namespace py = pybind11;
using namespace ember;

namespace {

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

py::str lenient_str(const std::string& s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

struct EngineState {
    std::shared_ptr<const Model> model;
    std::unique_ptr<Context> ctx;
    std::mutex mu;
};

// Run fn under the engine lock with the GIL released (in that order: a thread holding the lock
// never waits for the GIL).
template <class F>
auto locked(EngineState& st, F&& fn) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(st.mu);
    return fn();
}

class PyGeneration {
public:
    // seq < 0: a sequence of its own; else continue the caller's seq holding n_cached prompt tokens.
    PyGeneration(std::shared_ptr<EngineState> st, std::vector<int32_t> prompt, const GenerateParams& params, int32_t seq,
                 int32_t n_cached)
        : st_(std::move(st)) {
        locked(*st_, [&] {
            gen_ = seq < 0 ? std::make_unique<Generation>(*st_->ctx, std::move(prompt), params)
                           : std::make_unique<Generation>(*st_->ctx, std::move(prompt), params, seq, n_cached);
        });
    }
    ~PyGeneration() { close(); }

    py::str next() {
        std::string piece = locked(*st_, [&] { return gen().next(); });
        return lenient_str(piece);
    }
    bool done() const { return !gen_ || gen_->done(); }
    std::string finish_reason() const { return finish_reason_name(gen_ ? gen_->finish_reason() : finish_); }
    std::vector<int32_t> tokens() const { return gen_ ? gen_->tokens() : tokens_; }
    py::dict stats() const {
        const GenerationStats& s = gen_ ? gen_->stats() : stats_;
        return py::dict(py::arg("prompt_tokens") = s.n_prompt, py::arg("completion_tokens") = s.n_generated,
                        py::arg("prompt_seconds") = s.prompt_seconds, py::arg("generate_seconds") = s.generate_seconds);
    }
    // Free the sequence now (a stream abandoned half-way); what was generated stays readable.
    void close() {
        if (!gen_) return;
        tokens_ = gen_->tokens();
        stats_ = gen_->stats();
        finish_ = gen_->finish_reason();
        if (interpreter_finalizing()) {  // no other thread runs; the GIL may not be given up now
            std::lock_guard<std::mutex> lock(st_->mu);
            gen_.reset();
            return;
        }
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(st_->mu);
        gen_.reset();
    }

private:
    Generation& gen() {
        if (!gen_) fail<ArgumentError>("this generation was closed");
        return *gen_;
    }
    std::shared_ptr<EngineState> st_;
    std::unique_ptr<Generation> gen_;
    std::vector<int32_t> tokens_;
    GenerationStats stats_;
    FinishReason finish_ = FinishReason::None;
};

class PyEngine {
public:
    PyEngine(const std::string& path, int32_t n_ctx, int32_t n_threads, const std::string& kv_type, int32_t n_seq_max,
             int32_t n_batch, int32_t kv_block_size, int32_t n_kv_blocks)
        : st_(std::make_shared<EngineState>()) {
        ContextParams p;
        p.n_ctx = n_ctx;
        p.n_threads = n_threads;
        p.n_seq_max = n_seq_max;
        p.n_batch = n_batch;
        p.kv_block_size = kv_block_size;
        p.n_kv_blocks = n_kv_blocks;
        if (kv_type == "f16") p.kv_type = GGMLType::F16;
        else if (kv_type == "f32") p.kv_type = GGMLType::F32;
        else fail<ArgumentError>("kv_type must be 'f16' or 'f32', got '", kv_type, "'");
        py::gil_scoped_release nogil;
        st_->model = Model::load(path);
        st_->ctx = std::make_unique<Context>(st_->model, p);
    }

    const Model& model() const { return *st_->model; }
    ModelHandle handle() const { return ModelHandle{st_->model, st_->ctx->params()}; }
    Context& ctx() { return *st_->ctx; }
    std::shared_ptr<EngineState> state() const { return st_; }

    py::dict info() {
        const HParams& hp = model().hparams();
        const KVCache& kv = ctx().kv();
        const ContextParams& cp = ctx().params();
        return py::dict(py::arg("architecture") = hp.traits->name, py::arg("name") = model().name(),
                        py::arg("n_params") = model().n_params(), py::arg("n_vocab") = hp.n_vocab,
                        py::arg("n_ctx_train") = hp.n_ctx_train, py::arg("n_embd") = hp.n_embd, py::arg("n_layer") = hp.n_layer,
                        py::arg("n_head") = hp.n_head, py::arg("n_head_kv") = hp.n_head_kv, py::arg("n_ctx") = cp.n_ctx,
                        py::arg("n_seq_max") = cp.n_seq_max, py::arg("n_batch") = cp.n_batch, py::arg("n_threads") = ctx().n_threads(),
                        py::arg("kv_type") = type_traits(cp.kv_type).name, py::arg("kv_block_size") = kv.params().block_size,
                        py::arg("kv_blocks") = kv.params().n_blocks, py::arg("kv_bytes") = kv.bytes(),
                        py::arg("weight_bytes") = model().weights().matrix_bytes, py::arg("load_seconds") = model().load_seconds(),
                        py::arg("isa") = isa_name(best_isa()));
    }

    std::vector<int32_t> tokenize(const py::bytes& text, bool add_special, bool parse_special) {
        std::string_view view = text;
        EncodeOptions opt;
        opt.add_special = add_special;
        opt.parse_special = parse_special;
        py::gil_scoped_release nogil;
        return model().tokenizer().encode(view, opt);
    }

    py::str detokenize(const std::vector<int32_t>& ids, bool skip_special) {
        std::string out;
        {
            py::gil_scoped_release nogil;
            out = model().tokenizer().decode(ids, skip_special);
        }
        return lenient_str(out);
    }

    // Logits of every position of a fresh sequence holding these tokens: [n, n_vocab].
    py::array_t<float> logits(const std::vector<int32_t>& ids) {
        const int32_t n_vocab = ctx().n_vocab();
        py::array_t<float> out({py::ssize_t(ids.size()), py::ssize_t(n_vocab)});
        float* dst = out.mutable_data();
        locked(*st_, [&] {
            if (ids.empty()) fail<ArgumentError>("logits: no tokens");
            if (int64_t(ids.size()) > ctx().n_ctx())
                fail<ArgumentError>("logits: ", ids.size(), " tokens are more than the context size (n_ctx = ", ctx().n_ctx(), ")");
            KVCache& kv = ctx().kv();
            const int32_t seq = kv.seq_new();
            struct Free { KVCache& kv; int32_t s; ~Free() { kv.seq_free(s); } } guard{kv, seq};
            Batch b;
            for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], int32_t(i), seq, true);
            const float* l = ctx().decode(b);
            std::memcpy(dst, l, sizeof(float) * ids.size() * size_t(n_vocab));
        });
        return out;
    }

    // The low-level batch API (tests, and the scheduler's habits): one call of Context::decode.
    py::array_t<float> decode(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos,
                              const std::vector<int32_t>& seq, const std::vector<bool>& want) {
        if (pos.size() != tokens.size() || seq.size() != tokens.size() || want.size() != tokens.size())
            fail<ArgumentError>("decode: tokens, pos, seq and logits must have the same length");
        Batch b;
        for (size_t i = 0; i < tokens.size(); ++i) b.add(tokens[i], pos[i], seq[i], want[i]);
        const int32_t n_vocab = ctx().n_vocab();
        py::array_t<float> out({py::ssize_t(b.n_outputs()), py::ssize_t(n_vocab)});
        float* dst = out.mutable_data();
        locked(*st_, [&] {
            const float* l = ctx().decode(b);
            std::memcpy(dst, l, sizeof(float) * size_t(b.n_outputs()) * size_t(n_vocab));
        });
        return out;
    }

    int32_t seq_new() { return locked(*st_, [&] { return ctx().kv().seq_new(); }); }
    int32_t seq_fork(int32_t s) { return locked(*st_, [&] { return ctx().kv().seq_fork(s); }); }
    void seq_free(int32_t s) { locked(*st_, [&] { ctx().kv().seq_free(s); }); }
    void seq_truncate(int32_t s, int32_t n) { locked(*st_, [&] { ctx().kv().seq_truncate(s, n); }); }
    int32_t seq_len(int32_t s) { return locked(*st_, [&] { return ctx().kv().seq_len(s); }); }
    std::vector<int32_t> seq_blocks(int32_t s) { return locked(*st_, [&] { return ctx().kv().seq_blocks(s); }); }
    int32_t block_refcount(int32_t b) { return locked(*st_, [&] { return ctx().kv().block_refcount(b); }); }
    int32_t seq_new_from_blocks(const std::vector<int32_t>& blocks) {
        return locked(*st_, [&] { return ctx().kv().seq_new_from_blocks(blocks); });
    }
    void seq_share_block(int32_t s, int32_t i, int32_t b) { locked(*st_, [&] { ctx().kv().seq_share_block(s, i, b); }); }
    void block_retain(int32_t b) { locked(*st_, [&] { ctx().kv().block_retain(b); }); }
    void block_release(int32_t b) { locked(*st_, [&] { ctx().kv().block_release(b); }); }
    py::dict kv_usage() {
        int32_t used = 0, free = 0, active = 0;
        locked(*st_, [&] {
            const KVCache& kv = ctx().kv();
            used = kv.n_blocks_used();
            free = kv.n_blocks_free();
            active = kv.n_seq_active();
        });
        return py::dict(py::arg("blocks_used") = used, py::arg("blocks_free") = free, py::arg("sequences") = active);
    }

    py::dict perplexity(const std::vector<int32_t>& tokens, int32_t n_chunk_ctx, bool add_bos, int32_t n_chunks_max) {
        PerplexityResult r = locked(*st_, [&] { return ember::perplexity(ctx(), tokens, n_chunk_ctx, add_bos, n_chunks_max); });
        return py::dict(py::arg("ppl") = r.ppl, py::arg("ppl_error") = r.ppl_error, py::arg("chunk_ppl") = r.chunk_ppl,
                        py::arg("n_scored") = r.n_scored, py::arg("seconds") = r.seconds, py::arg("nll") = r.mean_nll);
    }

private:
    std::shared_ptr<EngineState> st_;
};


}  // namespace

void bind_engine(py::module_& m) {
    py::class_<ModelHandle>(m, "ModelHandle");  // opaque: passed from Engine.handle() to Scheduler

    py::class_<PyGeneration>(m, "Generation")
        .def("next", &PyGeneration::next)
        .def_property_readonly("done", &PyGeneration::done)
        .def_property_readonly("finish_reason", &PyGeneration::finish_reason)
        .def_property_readonly("tokens", &PyGeneration::tokens)
        .def("stats", &PyGeneration::stats)
        .def("close", &PyGeneration::close);

    py::class_<PyEngine>(m, "Engine")
        .def(py::init<const std::string&, int32_t, int32_t, const std::string&, int32_t, int32_t, int32_t, int32_t>(),
             py::arg("path"), py::arg("n_ctx") = 4096, py::arg("n_threads") = 0, py::arg("kv_type") = "f16",
             py::arg("n_seq_max") = 1, py::arg("n_batch") = 512, py::arg("kv_block_size") = 16, py::arg("n_kv_blocks") = 0)
        .def("info", &PyEngine::info)
        .def("handle", &PyEngine::handle)
        .def_property_readonly("chat_template", [](const PyEngine& e) { return e.model().chat_template(); })
        .def_property_readonly("bos_id", [](const PyEngine& e) { return e.model().tokenizer().vocab().bos_id; })
        .def_property_readonly("eos_id", [](const PyEngine& e) { return e.model().tokenizer().vocab().eos_id; })
        .def_property_readonly("add_bos", [](const PyEngine& e) { return e.model().tokenizer().vocab().add_bos; })
        .def("token_text", [](const PyEngine& e, int32_t id) {
                 const Vocab& v = e.model().tokenizer().vocab();
                 if (id < 0 || id >= v.size()) fail<ArgumentError>("token id ", id, " is out of range (vocabulary of ", v.size(), ")");
                 return lenient_str(v.tokens[size_t(id)]);
             }, py::arg("id"))
        .def("is_eog", [](const PyEngine& e, int32_t id) { return e.model().tokenizer().is_eog(id); }, py::arg("id"))
        .def("tokenize", &PyEngine::tokenize, py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false)
        .def("detokenize", &PyEngine::detokenize, py::arg("ids"), py::arg("skip_special") = false)
        .def("logits", &PyEngine::logits, py::arg("ids"))
        .def("decode", &PyEngine::decode, py::arg("tokens"), py::arg("pos"), py::arg("seq"), py::arg("logits"))
        .def("seq_new", &PyEngine::seq_new)
        .def("seq_fork", &PyEngine::seq_fork, py::arg("seq"))
        .def("seq_free", &PyEngine::seq_free, py::arg("seq"))
        .def("seq_truncate", &PyEngine::seq_truncate, py::arg("seq"), py::arg("n"))
        .def("seq_len", &PyEngine::seq_len, py::arg("seq"))
        .def("seq_blocks", &PyEngine::seq_blocks, py::arg("seq"))
        .def("block_refcount", &PyEngine::block_refcount, py::arg("block"))
        .def("seq_new_from_blocks", &PyEngine::seq_new_from_blocks, py::arg("blocks"))
        .def("seq_share_block", &PyEngine::seq_share_block, py::arg("seq"), py::arg("index"), py::arg("block"))
        .def("block_retain", &PyEngine::block_retain, py::arg("block"))
        .def("block_release", &PyEngine::block_release, py::arg("block"))
        .def("kv_usage", &PyEngine::kv_usage)
        .def("perplexity", &PyEngine::perplexity, py::arg("tokens"), py::arg("n_ctx"), py::arg("add_bos"),
             py::arg("n_chunks") = -1)
        .def("generate",
             [](PyEngine& e, std::vector<int32_t> prompt, int32_t max_tokens, float temperature, int32_t top_k, float top_p,
                float min_p, float repeat_penalty, int32_t repeat_last_n, float presence_penalty, float frequency_penalty,
                uint64_t seed, std::vector<std::string> stop, bool ignore_eos, bool skip_special, int32_t seq,
                int32_t n_cached) {
                 GenerateParams gp;
                 gp.sampling = SamplingParams{temperature,      top_k,         top_p,
                                              min_p,            repeat_penalty, repeat_last_n,
                                              presence_penalty, frequency_penalty, seed};  // field order
                 validate(gp.sampling);
                 gp.max_tokens = max_tokens;
                 gp.stop = std::move(stop);
                 gp.ignore_eos = ignore_eos;
                 gp.skip_special = skip_special;
                 return std::make_unique<PyGeneration>(e.state(), std::move(prompt), gp, seq, n_cached);
             },
             py::arg("prompt"), py::arg("max_tokens"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
             py::arg("min_p"), py::arg("repeat_penalty"), py::arg("repeat_last_n"), py::arg("presence_penalty"),
             py::arg("frequency_penalty"), py::arg("seed"), py::arg("stop"), py::arg("ignore_eos"), py::arg("skip_special"),
             py::arg("seq") = -1, py::arg("n_cached") = 0);
}
