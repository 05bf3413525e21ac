// bind_scheduler.cpp — _core.Scheduler: the continuous-batching scheduler (cpp/scheduler.h) over
// a Context of its own on a loaded model's weights; ember.Engine (engine.py) wraps it.
//
// step() runs with the GIL released. submit/cancel/has_work/stats release it too before they
// take the scheduler's mutex, so a thread waiting for the mutex never holds the GIL (and step
// never needs the GIL while it holds the mutex): no lock-order deadlock between them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "common.h"
#include "context.h"
#include "scheduler.h"

namespace py = pybind11;
using namespace ember;

namespace {

py::str utf8_lenient(const std::string& s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

py::object event_tuple(const SchedulerEvent& e) {
    py::object logprobs = py::none();
    if (!e.logprobs.empty()) {
        py::list l;
        for (const TokenLogprob& t : e.logprobs) {
            py::list top;
            for (const auto& [id, lp] : t.top) top.append(py::make_tuple(id, lp));
            l.append(py::dict(py::arg("token") = t.token, py::arg("logprob") = t.logprob, py::arg("top") = top));
        }
        logprobs = l;
    }
    py::object reason = e.finished ? py::object(py::str(finish_reason_name(e.finish_reason))) : py::none();
    py::object error = e.finish_reason == FinishReason::Error ? py::object(utf8_lenient(e.error)) : py::none();
    return py::make_tuple(e.id, utf8_lenient(e.text), py::cast(e.tokens), logprobs, e.finished, reason, error, e.n_prompt,
                          e.n_generated);
}

class PyScheduler {
public:
    PyScheduler(const ModelHandle& h, int32_t n_ctx, int32_t max_running, int32_t token_budget, int32_t kv_blocks,
                bool prefix_cache) {
        if (max_running <= 0) fail<ArgumentError>("max_running must be positive, got ", max_running);
        if (token_budget <= 0) fail<ArgumentError>("token_budget must be positive, got ", token_budget);
        if (kv_blocks < 0) fail<ArgumentError>("kv_blocks must be positive, got ", kv_blocks);
        ContextParams p = h.params;
        if (n_ctx > 0) p.n_ctx = n_ctx;
        p.n_seq_max = max_running;
        p.n_batch = token_budget;  // one step's prompt chunks fit one micro-batch
        p.n_kv_blocks = kv_blocks;
        SchedulerParams sp;
        sp.token_budget = token_budget;
        sp.prefix_cache = prefix_cache;
        py::gil_scoped_release nogil;
        ctx_ = std::make_unique<Context>(h.model, p);
        sched_ = std::make_unique<Scheduler>(*ctx_, sp);
    }

    int64_t submit(std::vector<int32_t> prompt, int32_t max_tokens, float temperature, int32_t top_k, float top_p, float min_p,
                   float repeat_penalty, int32_t repeat_last_n, float presence_penalty, float frequency_penalty, uint64_t seed,
                   std::vector<std::string> stop, bool ignore_eos, int32_t logprobs) {
        RequestParams rp;
        rp.gen.sampling = SamplingParams{temperature,      top_k,         top_p,
                                         min_p,            repeat_penalty, repeat_last_n,
                                         presence_penalty, frequency_penalty, seed};  // field order
        rp.gen.max_tokens = max_tokens;
        rp.gen.stop = std::move(stop);
        rp.gen.ignore_eos = ignore_eos;
        rp.logprobs = logprobs;
        py::gil_scoped_release nogil;
        return sched_->submit(std::move(prompt), rp);
    }

    void cancel(int64_t id) {
        py::gil_scoped_release nogil;
        sched_->cancel(id);
    }

    py::list step() {
        std::vector<SchedulerEvent> events;
        {
            py::gil_scoped_release nogil;
            events = sched_->step();
        }
        py::list out;
        for (const SchedulerEvent& e : events) out.append(event_tuple(e));
        return out;
    }

    bool has_work() {
        py::gil_scoped_release nogil;
        return sched_->has_work();
    }

    py::dict stats() {
        SchedulerStats s;
        {
            py::gil_scoped_release nogil;
            s = sched_->stats();
        }
        return py::dict(py::arg("running") = s.running, py::arg("waiting") = s.waiting,
                        py::arg("kv_blocks_used") = s.kv_blocks_used, py::arg("kv_blocks_total") = s.kv_blocks_total,
                        py::arg("prefix_cache_blocks") = s.prefix_cache_blocks, py::arg("prefix_queries") = s.prefix_queries,
                        py::arg("prefix_hit_blocks") = s.prefix_hit_blocks, py::arg("prefix_hit_tokens") = s.prefix_hit_tokens,
                        py::arg("preemptions") = s.preemptions, py::arg("prompt_tokens_total") = s.prompt_tokens_total,
                        py::arg("generated_tokens_total") = s.generated_tokens_total,
                        py::arg("computed_tokens_total") = s.computed_tokens_total, py::arg("steps") = s.steps,
                        py::arg("last_step_tokens") = s.last_step_tokens, py::arg("last_step_requests") = s.last_step_requests);
    }

    int32_t n_ctx() const { return ctx_->n_ctx(); }
    int32_t max_running() const { return ctx_->params().n_seq_max; }
    int32_t kv_block_size() const { return ctx_->kv().params().block_size; }

private:
    std::unique_ptr<Context> ctx_;        // declared first: outlives the scheduler
    std::unique_ptr<Scheduler> sched_;
};

}  // namespace

void bind_scheduler(py::module_& m) {
    py::class_<PyScheduler>(m, "Scheduler")
        .def(py::init<const ModelHandle&, int32_t, int32_t, int32_t, int32_t, bool>(), py::arg("model"), py::arg("n_ctx") = 0,
             py::arg("max_running") = 8, py::arg("token_budget") = 512, py::arg("kv_blocks") = 0,
             py::arg("prefix_cache") = true)
        .def("submit", &PyScheduler::submit, py::arg("prompt"), py::arg("max_tokens"), py::arg("temperature"),
             py::arg("top_k"), py::arg("top_p"), py::arg("min_p"), py::arg("repeat_penalty"), py::arg("repeat_last_n"),
             py::arg("presence_penalty"), py::arg("frequency_penalty"), py::arg("seed"), py::arg("stop"),
             py::arg("ignore_eos"), py::arg("logprobs"))
        .def("cancel", &PyScheduler::cancel, py::arg("id"))
        .def("step", &PyScheduler::step)
        .def("has_work", &PyScheduler::has_work)
        .def("stats", &PyScheduler::stats)
        .def_property_readonly("n_ctx", &PyScheduler::n_ctx)
        .def_property_readonly("max_running", &PyScheduler::max_running)
        .def_property_readonly("kv_block_size", &PyScheduler::kv_block_size);
}
