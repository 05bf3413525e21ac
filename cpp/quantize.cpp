// quantize.cpp — the quantize driver: checks, per-tensor conversion over threads, progress.
//
// Every check that can refuse the run (TYPE, OUT vs IN, split files, convertible types, the
// requantization policy) happens before OUT is created, so the common mistakes cost nothing
// and name the tensor at fault. Tensors are then converted one at a time: the rows of a tensor
// are cut into chunks of at least kChunkElements values that the threads take from a shared
// counter; each chunk is dequantized into the thread's own float buffer (or read in place
// when the source is aligned F32) and quantized into the tensor's output buffer.
#include "quantize.h"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <thread>

#include "common.h"
#include "gguf.h"
#include "gguf_writer.h"
#include "output_file.h"
#include "quantize_rules.h"
#include "quants/dispatch.h"
#include "quants/types.h"

namespace ember {

// Big enough that the per-chunk overhead vanishes, small enough that a 576 x 576 matrix still
// spreads over 16 threads (llama.cpp uses the same 16K-value minimum chunk).
static constexpr int64_t kChunkElements = 32 * 512;
static constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION, as llama.cpp writes it

static double bits_per_weight(GGMLType t) {
    const TypeTraits& tr = type_traits(t);
    return 8.0 * double(tr.type_size) / double(tr.block_size);
}

static bool is_block_quantized(GGMLType t) { return type_traits(t).block_size > 1; }

static std::string human_bytes(uint64_t n) {
    char buf[32];
    if (n < 1024) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
    else if (n < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", double(n) / 1024);
    else if (n < (1u << 30)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(n) / (1 << 20));
    else std::snprintf(buf, sizeof buf, "%.2f GiB", double(n) / (1 << 30));
    return buf;
}

// numpy order, as `ember info --tensors` shows shapes
static std::string shape_text(const GGUFTensorInfo& t) {
    std::string s = "[";
    for (int d = int(t.n_dims) - 1; d >= 0; --d) s += std::to_string(t.ne[d]) + (d ? ", " : "]");
    return s;
}

// Replace a key's value in place (keeping its position), or append it.
static void set_u32(std::vector<GGUFKeyValue>& kvs, std::string_view key, uint32_t value) {
    GGUFValue v;
    v.type = GGUFType::UINT32;
    v.u = value;
    v.i = value;
    v.f = value;
    for (GGUFKeyValue& kv : kvs)
        if (kv.key == key) {
            kv.value = v;
            return;
        }
    kvs.push_back({key, v});
}

static void check_not_same_file(const std::string& input, const std::string& output) {
    struct stat si {}, so {};
    if (::stat(output.c_str(), &so) != 0) return;  // OUT does not exist yet: it cannot be IN
    if (S_ISDIR(so.st_mode)) throw OutputFileError("output '" + output + "' is a directory", EISDIR);
    if (::stat(input.c_str(), &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        fail<ArgumentError>("output '", output, "' is the input file: quantize never overwrites its input; choose another output name");
}

static void check_not_split(const GGUFFile& in) {
    const GGUFKeyValue* kv = in.find("split.count");
    if (kv && kv->value.type != GGUFType::STRING && kv->value.type != GGUFType::ARRAY && kv->value.u > 1)
        fail<GGUFError>("GGUF file '", in.path(), "': part of a model split into ", kv->value.u,
                        " files; merge the parts into one file before quantizing");
}

// Refuse before anything is written: types ember cannot read or write, and requantization to
// fewer bits per weight unless allowed (quantization error would compound; llama.cpp refuses
// any requantization without --allow-requantize, ember only the lossy direction).
static void check_conversions(const GGUFFile& in, const std::vector<TensorPlan>& plan, bool allow_requantize) {
    for (size_t k = 0; k < plan.size(); ++k) {
        const GGUFTensorInfo& t = in.tensors()[k];
        const GGMLType from = t.type, to = plan[k].type;
        if (from == to) continue;
        const char* fname = type_traits(from).name;
        const char* tname = type_traits(to).name;
        if (!can_dequantize(from))
            fail<GGUFError>("GGUF file '", in.path(), "': tensor '", t.name, "' is ", fname, ", which ember cannot dequantize to convert it to ", tname);
        if (!can_quantize(to))
            fail<ArgumentError>("tensor '", t.name, "': quantizing to ", tname, " is not supported");
        if (is_block_quantized(from) && bits_per_weight(to) < bits_per_weight(from) && !allow_requantize) {
            char bpw[64];
            std::snprintf(bpw, sizeof bpw, "%.2f to %.2f bits per weight", bits_per_weight(from), bits_per_weight(to));
            fail<ArgumentError>("GGUF file '", in.path(), "': tensor '", t.name, "' is already quantized (", fname,
                                "); requantizing it to ", tname, " (", bpw, ") compounds the quantization error; "
                                "allow requantization (--allow-requantize) to do it anyway");
        }
    }
}

// Convert one tensor into dst (row_size(to, ne0) * rows bytes) on up to n_threads threads.
static void convert_tensor(const GGUFFile& in, const GGUFTensorInfo& t, GGMLType to, uint8_t* dst, int n_threads) {
    const int64_t ne0 = t.ne[0], n_rows = t.n_rows();
    const uint64_t src_row = row_size(t.type, ne0), dst_row = row_size(to, ne0);
    const int64_t rows_per_chunk = std::max<int64_t>(1, (kChunkElements + ne0 - 1) / ne0);
    const int64_t n_chunks = (n_rows + rows_per_chunk - 1) / rows_per_chunk;
    const bool f32_in_place = t.type == GGMLType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0;
    const KernelTable& k = kernels();

    std::atomic<int64_t> next{0};
    std::atomic<bool> failed{false};
    const int n_workers = int(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_chunks)));
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n_workers));

    auto work = [&](int w) {
        std::vector<float> buf;
        int64_t r0 = 0, nr = 0;
        try {
            while (!failed.load(std::memory_order_relaxed)) {
                const int64_t c = next.fetch_add(1);
                if (c >= n_chunks) break;
                r0 = c * rows_per_chunk;
                nr = std::min(rows_per_chunk, n_rows - r0);
                const uint8_t* src = t.data + uint64_t(r0) * src_row;
                const float* x;
                if (f32_in_place) {
                    x = reinterpret_cast<const float*>(src);
                } else {
                    buf.resize(size_t(nr * ne0));
                    dequantize_rows(t.type, src, buf.data(), nr, ne0, k);
                    x = buf.data();
                }
                quantize_rows(to, x, dst + uint64_t(r0) * dst_row, nr, ne0, k);
            }
        } catch (const Error& e) {
            // The kernels number rows from the start of the chunk they were given.
            errors[size_t(w)] = std::make_exception_ptr(GGUFError(
                "GGUF file '" + in.path() + "': tensor '" + std::string(t.name) + "': rows " + std::to_string(r0) + ".." +
                std::to_string(r0 + nr - 1) + " (row 0 below is row " + std::to_string(r0) + "): " + e.what()));
            failed = true;
        } catch (...) {
            errors[size_t(w)] = std::current_exception();
            failed = true;
        }
    };

    std::vector<std::thread> threads;
    threads.reserve(size_t(n_workers - 1));
    try {
        for (int w = 1; w < n_workers; ++w) threads.emplace_back(work, w);
    } catch (...) {  // could not start a thread: stop the others, then report
        failed = true;
        for (std::thread& th : threads) th.join();
        throw;
    }
    work(0);
    for (std::thread& th : threads) th.join();
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

QuantizeStats quantize_model(const std::string& input, const std::string& output, const std::string& type,
                             const QuantizeParams& params) {
    const auto t_start = std::chrono::steady_clock::now();
    const QuantTarget* target = quant_target_by_name(type);
    if (!target) fail<ArgumentError>("unknown quantization type '", type, "' (expected one of: ", quant_target_names(), ")");
    if (params.n_threads < 0) fail<ArgumentError>("n_threads must be >= 0 (0: one per CPU), got ", params.n_threads);
    int n_threads = params.n_threads;
    if (n_threads == 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));

    std::shared_ptr<GGUFFile> in = GGUFFile::open(input);
    check_not_same_file(input, output);
    check_not_split(*in);
    const std::vector<TensorPlan> plan = plan_tensor_types(*in, *target);
    check_conversions(*in, plan, params.allow_requantize);

    std::vector<GGUFKeyValue> kvs = in->kvs();  // views into the input mapping, alive with `in`
    set_u32(kvs, "general.quantization_version", kQuantizationVersion);
    set_u32(kvs, "general.file_type", target->file_type);

    const std::vector<GGUFTensorInfo>& tensors = in->tensors();
    std::vector<GGUFTensorOut> table(tensors.size());
    size_t name_width = 0;
    for (size_t k = 0; k < tensors.size(); ++k) {
        const GGUFTensorInfo& t = tensors[k];
        table[k].name = t.name;
        table[k].n_dims = t.n_dims;
        std::copy(t.ne, t.ne + 4, table[k].ne);
        table[k].type = plan[k].type;
        name_width = std::max(name_width, std::min<size_t>(t.name.size(), 40));
    }

    OutputFile out(output);
    GGUFWriter writer(out, kvs, table);

    QuantizeStats st;
    st.type = target->name;
    st.file_type = target->file_type;
    st.file_type_name = target->file_type_name;
    st.n_tensors = int64_t(tensors.size());
    st.n_threads = n_threads;
    std::map<uint32_t, int64_t> per_type;
    std::vector<uint8_t> buffer;
    const int count_width = int(std::to_string(tensors.size()).size());

    for (size_t k = 0; k < tensors.size(); ++k) {
        const GGUFTensorInfo& t = tensors[k];
        const GGMLType to = plan[k].type;
        const uint64_t nbytes = GGUFWriter::tensor_nbytes(table[k]);
        if (to == t.type) {
            writer.write_tensor_data(t.data, t.nbytes);  // same type: the bytes as they are
            ++st.n_copied;
        } else {
            buffer.resize(size_t(nbytes));
            convert_tensor(*in, t, to, buffer.data(), n_threads);
            writer.write_tensor_data(buffer.data(), nbytes);
            ++st.n_converted;
        }
        st.n_fallback += plan[k].fallback;
        ++per_type[uint32_t(to)];
        if (params.log) {
            char head[64];
            std::snprintf(head, sizeof head, "[%*zu/%zu] ", count_width, k + 1, tensors.size());
            std::string line = head + std::string(t.name);
            if (line.size() < std::string(head).size() + name_width) line.resize(std::string(head).size() + name_width, ' ');
            char types[48];
            std::snprintf(types, sizeof types, "  %-5s -> %-5s", type_traits(t.type).name, type_traits(to).name);
            line += types;
            line += "  " + shape_text(t) + "  " + human_bytes(nbytes);
            if (to == t.type) line += "  (copied)";
            if (plan[k].fallback) line += "  (fallback: row length " + std::to_string(t.ne[0]) + ")";
            params.log(line);
        }
    }
    std::vector<uint8_t>().swap(buffer);
    writer.finish();
    const uint64_t written = out.size();
    out.commit();

    st.input_bytes = in->file_size();
    st.output_bytes = written;
    for (const auto& [id, n] : per_type) st.tensors_per_type.emplace_back(type_traits(id)->name, n);
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (params.log) {
        char line[256];
        std::snprintf(line, sizeof line, "done: %lld tensors (%lld converted, %lld copied, %lld fallbacks) in %.2f s on %d thread%s",
                      static_cast<long long>(st.n_tensors), static_cast<long long>(st.n_converted),
                      static_cast<long long>(st.n_copied), static_cast<long long>(st.n_fallback), st.seconds, n_threads,
                      n_threads == 1 ? "" : "s");
        params.log(line);
        std::string types = "types:";
        for (const auto& [name, n] : st.tensors_per_type) types += " " + name + " " + std::to_string(n) + ",";
        if (!st.tensors_per_type.empty()) types.pop_back();
        params.log(types);
        params.log("size: " + human_bytes(st.input_bytes) + " -> " + human_bytes(st.output_bytes) + " (" + st.file_type_name +
                   ", general.file_type " + std::to_string(st.file_type) + ")");
    }
    return st;
}

}  // namespace ember
