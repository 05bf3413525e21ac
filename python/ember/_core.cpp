// _core.cpp — the pybind11 binding: a thin layer that converts types and errors, nothing more.
// The Pythonic API (GGUFFile, quants) lives in the package's .py files on top of this.
//
// Errors: ember::GGUFError -> ember.errors.GGUFError (a ValueError), FileError -> an OSError
// subclass that is also a GGUFError, ArgumentError -> ValueError, other ember::Error -> RuntimeError.
// Long-running calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "bindings.h"
#include "common.h"
#include "gguf.h"
#include "output_file.h"
#include "quantize.h"
#include "quantize_rules.h"
#include "quants/dispatch.h"
#include "quants/types.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace py = pybind11;
using namespace ember;

namespace {

py::object error_class(const char* name) { return py::module_::import("ember.errors").attr(name); }

// Messages quote keys and tensor names from the file, which may be any bytes (invalid UTF-8, NUL):
// decode leniently and by length, so the exception raised is always `cls` with the whole message.
void raise_as(PyObject* cls, const std::string& msg) {
    PyObject* s = PyUnicode_DecodeUTF8(msg.data(), Py_ssize_t(msg.size()), "backslashreplace");
    if (!s) return;  // leaves the MemoryError set
    PyErr_SetObject(cls, s);
    Py_DECREF(s);
}
void raise_as(const py::object& cls, const std::string& msg) { raise_as(cls.ptr(), msg); }

const KernelTable& table_for(const std::optional<std::string>& isa) {
    return isa ? kernels(isa_from_name(*isa)) : kernels();
}

GGMLType type_from_name(const std::string& name) {
    const TypeTraits* tr = type_by_name(name);
    if (!tr) fail<ArgumentError>("unknown tensor type '", name, "'");
    return tr->type;
}

py::str to_str(std::string_view s) {
    // GGUF strings should be UTF-8; anything else survives as surrogate escapes (lossless).
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "surrogateescape");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

// The inverse of to_str: a name as listed (surrogate escapes included) back to the file's bytes.
std::string from_str(const py::str& s) {
    PyObject* b = PyUnicode_AsEncodedString(s.ptr(), "utf-8", "surrogateescape");
    if (!b) throw py::error_already_set();
    std::string out(PyBytes_AS_STRING(b), size_t(PyBytes_GET_SIZE(b)));
    Py_DECREF(b);
    return out;
}

py::object scalar_to_py(GGUFType t, int64_t i, uint64_t u, double f) {
    switch (t) {
        case GGUFType::BOOL: return py::bool_(u != 0);
        case GGUFType::FLOAT32: case GGUFType::FLOAT64: return py::float_(f);
        case GGUFType::UINT8: case GGUFType::UINT16: case GGUFType::UINT32: case GGUFType::UINT64: return py::int_(u);
        default: return py::int_(i);
    }
}

py::object value_to_py(const GGUFValue& v) {
    if (v.type == GGUFType::STRING) return to_str(v.str);
    if (v.type != GGUFType::ARRAY) return scalar_to_py(v.type, v.i, v.u, v.f);
    py::list out(v.count);
    for (uint64_t k = 0; k < v.count; ++k) {
        if (v.elem_type == GGUFType::STRING) out[k] = to_str(v.strings[k]);
        else if (v.elem_type == GGUFType::ARRAY) out[k] = value_to_py(v.items[k]);
        else out[k] = scalar_to_py(v.elem_type, v.elem_int(k), v.elem_uint(k), v.elem_float(k));
    }
    return std::move(out);
}

std::string value_type_name(const GGUFValue& v) {
    if (v.type != GGUFType::ARRAY) return gguf_type_name(v.type);
    if (v.elem_type == GGUFType::ARRAY && !v.items.empty()) return "array[" + value_type_name(v.items[0]) + "]";
    return std::string("array[") + gguf_type_name(v.elem_type) + "]";
}

// numpy order: reversed ggml ne.
std::vector<py::ssize_t> numpy_shape(const GGUFTensorInfo& t) {
    std::vector<py::ssize_t> shape;
    for (int d = int(t.n_dims) - 1; d >= 0; --d) shape.push_back(py::ssize_t(t.ne[d]));
    return shape;
}

class PyGGUF {
public:
    explicit PyGGUF(const std::string& path) {
        py::gil_scoped_release nogil;
        file_ = GGUFFile::open(path);
    }

    uint32_t version() const { return file_->version(); }
    uint64_t alignment() const { return file_->alignment(); }
    uint64_t data_offset() const { return file_->data_offset(); }
    uint64_t file_size() const { return file_->file_size(); }
    std::string path() const { return file_->path(); }

    py::dict metadata() const {
        py::dict d;
        for (const GGUFKeyValue& kv : file_->kvs()) d[to_str(kv.key)] = value_to_py(kv.value);
        return d;
    }

    // One key's value (None when absent), without converting the whole metadata.
    py::object get(const std::string& key) const {
        const GGUFKeyValue* kv = file_->find(key);
        return kv ? value_to_py(kv->value) : py::none();
    }

    py::dict metadata_types() const {
        py::dict d;
        for (const GGUFKeyValue& kv : file_->kvs()) d[to_str(kv.key)] = value_type_name(kv.value);
        return d;
    }

    // (name, numpy shape, type name, absolute offset, nbytes) per tensor, in file order.
    py::list tensor_infos() const {
        py::list out;
        for (const GGUFTensorInfo& t : file_->tensors()) {
            py::tuple shape = py::cast(numpy_shape(t));
            out.append(py::make_tuple(to_str(t.name), shape, type_traits(t.type).name,
                                      file_->data_offset() + t.offset, t.nbytes));
        }
        return out;
    }

    // Zero-copy, read-only uint8 view shaped (..., bytes per row); keeps the mapping alive.
    py::array raw(const py::str& name) const {
        const GGUFTensorInfo& t = tensor(from_str(name));
        std::vector<py::ssize_t> shape = numpy_shape(t);
        shape.back() = py::ssize_t(row_size(t.type, t.ne[0]));
        std::vector<py::ssize_t> strides(shape.size());
        py::ssize_t stride = 1;
        for (int d = int(shape.size()) - 1; d >= 0; --d) {
            strides[d] = stride;
            stride *= shape[d];
        }
        auto* keep = new std::shared_ptr<const MappedFile>(file_->mapping());
        py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<const MappedFile>*>(p); });
        py::array arr(py::dtype::of<uint8_t>(), shape, strides, t.data, owner);
        py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        return arr;
    }

    py::array_t<float> dequantize(const py::str& py_name, const std::optional<std::string>& isa) const {
        const std::string name = from_str(py_name);
        const GGUFTensorInfo& t = tensor(name);
        if (!can_dequantize(t.type)) {  // raised directly: the name may hold NUL bytes, which what() would cut at
            raise_as(PyExc_ValueError,
                     "tensor '" + name + "': dequantizing " + type_traits(t.type).name + " is not supported");
            throw py::error_already_set();
        }
        const KernelTable& k = table_for(isa);
        py::array_t<float> out(numpy_shape(t));
        float* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            dequantize_rows(t.type, t.data, dst, t.n_rows(), t.ne[0], k);
        }
        return out;
    }

private:
    const GGUFTensorInfo& tensor(const std::string& name) const {
        const GGUFTensorInfo* t = file_->find_tensor(name);
        if (!t) {
            raise_as(PyExc_KeyError, "no tensor named '" + name + "' in " + file_->path());
            throw py::error_already_set();
        }
        return *t;
    }

    std::shared_ptr<GGUFFile> file_;
};

py::array_t<uint8_t> quantize(py::array_t<float, py::array::c_style | py::array::forcecast> x, const std::string& type_name,
                              const std::optional<std::string>& isa) {
    const GGMLType type = type_from_name(type_name);
    if (x.ndim() != 2) fail<ArgumentError>("quantize expects a 2-D array (rows, row_length), got ", x.ndim(), " dimensions");
    const int64_t rows = x.shape(0), cols = x.shape(1);
    const TypeTraits& tr = type_traits(type);
    if (cols == 0 || cols % tr.block_size != 0)
        fail<ArgumentError>("quantize ", tr.name, ": row length ", cols, " is not a positive multiple of the block size ", tr.block_size);
    const KernelTable& k = table_for(isa);
    py::array_t<uint8_t> out({py::ssize_t(rows), py::ssize_t(row_size(type, cols))});
    const float* src = x.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        quantize_rows(type, src, dst, rows, cols, k);
    }
    return out;
}

py::array_t<float> dequantize(py::array data, const std::string& type_name, const std::vector<int64_t>& shape,
                              const std::optional<std::string>& isa) {
    const GGMLType type = type_from_name(type_name);
    const TypeTraits& tr = type_traits(type);
    if (shape.empty() || shape.size() > 4) fail<ArgumentError>("dequantize: shape must have 1 to 4 dimensions");
    uint64_t n = 1;
    for (int64_t d : shape) {
        if (d <= 0) fail<ArgumentError>("dequantize: shape dimensions must be positive, got ", d);
        if (mul_overflows(n, uint64_t(d), &n) || n > (uint64_t(1) << 48)) fail<ArgumentError>("dequantize: shape is too large");
    }
    const int64_t cols = shape.back(), rows = int64_t(n) / cols;
    if (cols % tr.block_size != 0)
        fail<ArgumentError>("dequantize ", tr.name, ": last dimension ", cols, " is not a multiple of the block size ", tr.block_size);
    if (!(data.flags() & py::array::c_style)) fail<ArgumentError>("dequantize: data must be C-contiguous");
    const uint64_t expected = row_size(type, cols) * uint64_t(rows);
    const uint64_t got = uint64_t(data.nbytes());
    if (got != expected)
        fail<ArgumentError>("dequantize ", tr.name, ": shape needs ", expected, " bytes of data, got ", got);
    const KernelTable& k = table_for(isa);
    std::vector<py::ssize_t> pshape(shape.begin(), shape.end());
    py::array_t<float> out(pshape);
    const void* src = data.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        dequantize_rows(type, src, dst, rows, cols, k);
    }
    return out;
}

// quantize_model: the whole run without the GIL. Progress lines go to Python's sys.stderr (so
// redirection and capture work as for print); the callback also takes the GIL between tensors to
// notice Ctrl-C, which cancels the run (the partial output is removed) and raises KeyboardInterrupt.
py::dict py_quantize_model(const std::string& input, const std::string& output, const std::string& type, int n_threads,
                           bool allow_requantize, bool progress) {
    QuantizeParams params;
    params.n_threads = n_threads;
    params.allow_requantize = allow_requantize;
    params.log = [progress](const std::string& line) {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (progress) {
            py::object err = py::module_::import("sys").attr("stderr");
            if (!err.is_none()) {
                err.attr("write")(to_str(line + "\n"));
                err.attr("flush")();
            }
        }
    };
    QuantizeStats st;
    {
        py::gil_scoped_release nogil;
        st = ember::quantize_model(input, output, type, params);
    }
    py::dict types;
    for (const auto& [name, n] : st.tensors_per_type) types[py::str(name)] = n;
    return py::dict(py::arg("type") = st.type, py::arg("file_type") = st.file_type,
                    py::arg("file_type_name") = st.file_type_name, py::arg("n_tensors") = st.n_tensors,
                    py::arg("n_converted") = st.n_converted, py::arg("n_copied") = st.n_copied,
                    py::arg("n_fallback") = st.n_fallback, py::arg("tensor_types") = types,
                    py::arg("input_bytes") = st.input_bytes, py::arg("output_bytes") = st.output_bytes,
                    py::arg("seconds") = st.seconds, py::arg("n_threads") = st.n_threads);
}

class PyTokenizer {
public:
    explicit PyTokenizer(const std::string& path) {
        py::gil_scoped_release nogil;
        auto file = GGUFFile::open(path);
        tok_ = std::make_shared<Tokenizer>(Tokenizer::from_gguf(*file));
    }

    std::vector<int32_t> encode(const py::bytes& text, bool add_special, bool parse_special, std::optional<bool> add_bos,
                                std::optional<bool> add_eos) const {
        std::string_view view = text;  // the bytes object stays alive for the call
        EncodeOptions opt;
        opt.add_special = add_special;
        opt.parse_special = parse_special;
        opt.add_bos = add_bos ? int(*add_bos) : -1;
        opt.add_eos = add_eos ? int(*add_eos) : -1;
        py::gil_scoped_release nogil;
        return tok_->encode(view, opt);
    }

    py::str decode(const std::vector<int32_t>& ids, bool skip_special) const {
        std::string out;
        {
            py::gil_scoped_release nogil;
            out = tok_->decode(ids, skip_special);
        }
        return to_str(out);
    }

    py::bytes token_bytes(int32_t id) const { return py::bytes(tok_->token_bytes(id)); }
    py::str token_text(int32_t id) const {
        if (id < 0 || id >= tok_->n_vocab()) fail<ArgumentError>("token id ", id, " is out of range (vocabulary of ", tok_->n_vocab(), ")");
        return to_str(tok_->vocab().tokens[size_t(id)]);
    }
    const Vocab& vocab() const { return tok_->vocab(); }
    std::shared_ptr<Tokenizer> tokenizer() const { return tok_; }

private:
    std::shared_ptr<Tokenizer> tok_;
};

// Keeps its Tokenizer alive for as long as the stream lives.
class PyStreamDecoder {
public:
    PyStreamDecoder(const PyTokenizer& t, bool skip_special) : tok_(t.tokenizer()), dec_(*tok_, skip_special) {}
    py::str push(int32_t id) { return to_str(dec_.push(id)); }
    py::str flush() { return to_str(dec_.flush()); }

private:
    std::shared_ptr<Tokenizer> tok_;
    StreamDecoder dec_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "ember core (C++): GGUF reader and quant formats";

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const GGUFError& e) {
            raise_as(error_class("GGUFError"), e.what());
        } catch (const FileError& e) {
            py::object cls = error_class(e.errno_value == ENOENT ? "GGUFFileNotFoundError" : "GGUFOpenError");
            py::object exc = cls(e.errno_value, e.what());
            PyErr_SetObject(cls.ptr(), exc.ptr());
        } catch (const ArgumentError& e) {
            raise_as(PyExc_ValueError, e.what());
        } catch (const CapacityError& e) {
            raise_as(error_class("CapacityError"), e.what());
        } catch (const Error& e) {
            raise_as(PyExc_RuntimeError, e.what());
        }
    });

    py::class_<PyGGUF>(m, "GGUFReader")
        .def(py::init<const std::string&>(), py::arg("path"))
        .def_property_readonly("version", &PyGGUF::version)
        .def_property_readonly("alignment", &PyGGUF::alignment)
        .def_property_readonly("data_offset", &PyGGUF::data_offset)
        .def_property_readonly("file_size", &PyGGUF::file_size)
        .def_property_readonly("path", &PyGGUF::path)
        .def("metadata", &PyGGUF::metadata)
        .def("metadata_types", &PyGGUF::metadata_types)
        .def("get", &PyGGUF::get, py::arg("key"))
        .def("tensor_infos", &PyGGUF::tensor_infos)
        .def("raw", &PyGGUF::raw, py::arg("name"))
        .def("dequantize", &PyGGUF::dequantize, py::arg("name"), py::arg("isa") = py::none());

    py::class_<PyTokenizer>(m, "Tokenizer")
        .def(py::init<const std::string&>(), py::arg("path"))
        .def("encode", &PyTokenizer::encode, py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false,
             py::arg("add_bos") = py::none(), py::arg("add_eos") = py::none())
        .def("decode", &PyTokenizer::decode, py::arg("ids"), py::arg("skip_special") = false)
        .def("token_bytes", &PyTokenizer::token_bytes, py::arg("id"))
        .def("token_text", &PyTokenizer::token_text, py::arg("id"))
        .def_property_readonly("vocab_size", [](const PyTokenizer& t) { return t.vocab().size(); })
        .def_property_readonly("model", [](const PyTokenizer& t) { return t.vocab().model; })
        .def_property_readonly("pre", [](const PyTokenizer& t) { return t.vocab().pre; })
        .def_property_readonly("bos_id", [](const PyTokenizer& t) { return t.vocab().bos_id; })
        .def_property_readonly("eos_id", [](const PyTokenizer& t) { return t.vocab().eos_id; })
        .def_property_readonly("eot_id", [](const PyTokenizer& t) { return t.vocab().eot_id; })
        .def_property_readonly("pad_id", [](const PyTokenizer& t) { return t.vocab().pad_id; })
        .def_property_readonly("unk_id", [](const PyTokenizer& t) { return t.vocab().unk_id; })
        .def_property_readonly("add_bos", [](const PyTokenizer& t) { return t.vocab().add_bos; })
        .def_property_readonly("add_eos", [](const PyTokenizer& t) { return t.vocab().add_eos; })
        .def("token_type", [](const PyTokenizer& t, int32_t id) {
            if (id < 0 || id >= t.vocab().size()) fail<ArgumentError>("token id ", id, " is out of range");
            return int(t.vocab().types[size_t(id)]);
        });
    py::class_<PyStreamDecoder>(m, "StreamDecoder")
        .def(py::init<const PyTokenizer&, bool>(), py::arg("tokenizer"), py::arg("skip_special") = false)
        .def("push", &PyStreamDecoder::push, py::arg("id"))
        .def("flush", &PyStreamDecoder::flush);
    // Internal test hook (tests/test_tokenizer_bpe.py): the generated Unicode table for one code point.
    m.def("_unicode_info", [](uint32_t cp) {
        return py::make_tuple(unicode_category_name(unicode_category(cp)), unicode_is_space(cp), uint32_t(unicode_fold_ascii(cp)));
    }, py::arg("cp"));

    m.def("chat_format", [](const std::string& tmpl) { return std::string(chat_format_name(detect_chat_format(tmpl))); },
          py::arg("template"));
    m.def("render_chat", [](const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& messages,
                            bool add_generation_prompt, const std::string& bos, const std::string& eos) {
        std::vector<ChatMessage> msgs;
        for (const auto& [role, content] : messages) msgs.push_back({role, content});
        return render_chat(detect_chat_format(tmpl), msgs, add_generation_prompt, bos, eos);
    }, py::arg("template"), py::arg("messages"), py::arg("add_generation_prompt") = true, py::arg("bos") = "",
       py::arg("eos") = "");
    m.def("quantize", &quantize, py::arg("x"), py::arg("type"), py::arg("isa") = py::none());
    m.def("dequantize", &dequantize, py::arg("data"), py::arg("type"), py::arg("shape"), py::arg("isa") = py::none());
    m.def("type_info", [](const std::string& name) {
        const TypeTraits& tr = type_traits(type_from_name(name));
        return py::dict(py::arg("name") = tr.name, py::arg("id") = uint32_t(tr.type), py::arg("block_size") = tr.block_size,
                        py::arg("type_size") = tr.type_size, py::arg("can_quantize") = can_quantize(tr.type),
                        py::arg("can_dequantize") = can_dequantize(tr.type));
    });
    m.def("type_names", []() {
        std::vector<std::string> names;
        for (uint32_t id = 0; id < kMaxTypeId; ++id)
            if (const TypeTraits* tr = type_traits(id)) names.push_back(tr->name);
        return names;
    });
    // Registered after the general translator, so it is tried first: an output that cannot be
    // written is an OSError (FileNotFoundError, PermissionError, ... by errno), not a GGUF error.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const OutputFileError& e) {
            // OSError(errno, msg) is created as its errno's subclass (FileNotFoundError, ...); the
            // message holds the path's bytes, decoded leniently like every other message.
            const std::string msg = e.what();
            PyObject* text = PyUnicode_DecodeUTF8(msg.data(), Py_ssize_t(msg.size()), "backslashreplace");
            if (!text) return;
            PyObject* exc = PyObject_CallFunction(PyExc_OSError, "iN", e.errno_value, text);
            if (!exc) return;
            PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
            Py_DECREF(exc);
        }
    });
    m.def("quantize_model", &py_quantize_model, py::arg("input"), py::arg("output"), py::arg("type"), py::arg("n_threads") = 0,
          py::arg("allow_requantize") = false, py::arg("progress") = true);
    m.def("quantize_model_types", []() {
        std::vector<std::string> names;
        for (const QuantTarget& t : quant_targets()) names.push_back(t.name);
        return names;
    });
    m.def("best_isa", []() { return std::string(isa_name(best_isa())); });
    m.def("isa_supported", [](const std::string& name) { return isa_supported(isa_from_name(name)); });
    bind_sampler(m);
    bind_engine(m);
    bind_scheduler(m);
    bind_ops(m);
}
