// gguf.cpp — GGUF v2/v3 parsing and validation.
//
// Everything in the file is untrusted. The reader walks the header with a bounds-checked cursor;
// every count is checked against the bytes left, containers grow only as entries actually parse
// (so memory stays proportional to the file size), every size computation is overflow-checked,
// and every failure names the file, the field and the problem.
#include "gguf.h"

#include <algorithm>
#include <cstring>

#include "common.h"

namespace ember {

static constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian uint32
static constexpr int kMaxDims = 4;
static constexpr int kMaxArrayDepth = 4;
static constexpr uint64_t kMaxKeyLength = 65535;

const char* gguf_type_name(GGUFType t) {
    switch (t) {
        case GGUFType::UINT8: return "uint8";
        case GGUFType::INT8: return "int8";
        case GGUFType::UINT16: return "uint16";
        case GGUFType::INT16: return "int16";
        case GGUFType::UINT32: return "uint32";
        case GGUFType::INT32: return "int32";
        case GGUFType::FLOAT32: return "float32";
        case GGUFType::BOOL: return "bool";
        case GGUFType::STRING: return "string";
        case GGUFType::ARRAY: return "array";
        case GGUFType::UINT64: return "uint64";
        case GGUFType::INT64: return "int64";
        case GGUFType::FLOAT64: return "float64";
    }
    return "?";
}

uint64_t gguf_scalar_size(GGUFType t) {
    switch (t) {
        case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::BOOL: return 1;
        case GGUFType::UINT16: case GGUFType::INT16: return 2;
        case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::FLOAT32: return 4;
        case GGUFType::UINT64: case GGUFType::INT64: case GGUFType::FLOAT64: return 8;
        default: return 0;
    }
}

static bool valid_value_type(uint32_t t) { return t <= uint32_t(GGUFType::FLOAT64); }

// Smallest number of bytes one element of this type can occupy in the file.
static uint64_t min_encoded_size(GGUFType t) {
    if (t == GGUFType::STRING) return 8;   // length prefix
    if (t == GGUFType::ARRAY) return 12;   // element type + count
    return gguf_scalar_size(t);
}

// Widen one little-endian scalar at p (unaligned) into the value's numeric fields.
static void decode_scalar(GGUFType t, const uint8_t* p, int64_t* i, uint64_t* u, double* f) {
    auto load = [p](auto v) { std::memcpy(&v, p, sizeof(v)); return v; };
    switch (t) {
        case GGUFType::UINT8: *u = load(uint8_t{}); *i = int64_t(*u); break;
        case GGUFType::BOOL: *u = load(uint8_t{}) != 0; *i = int64_t(*u); break;
        case GGUFType::INT8: *i = load(int8_t{}); break;
        case GGUFType::UINT16: *u = load(uint16_t{}); *i = int64_t(*u); break;
        case GGUFType::INT16: *i = load(int16_t{}); break;
        case GGUFType::UINT32: *u = load(uint32_t{}); *i = int64_t(*u); break;
        case GGUFType::INT32: *i = load(int32_t{}); break;
        case GGUFType::UINT64: *u = load(uint64_t{}); *i = int64_t(*u); break;
        case GGUFType::INT64: *i = load(int64_t{}); break;
        case GGUFType::FLOAT32: *f = load(float{}); break;
        case GGUFType::FLOAT64: *f = load(double{}); break;
        default: break;
    }
    if (t == GGUFType::INT8 || t == GGUFType::INT16 || t == GGUFType::INT32 || t == GGUFType::INT64) *u = uint64_t(*i);
    if (t != GGUFType::FLOAT32 && t != GGUFType::FLOAT64) *f = (t == GGUFType::UINT64) ? double(*u) : double(*i);
}

int64_t GGUFValue::elem_int(uint64_t idx) const {
    int64_t i = 0; uint64_t u = 0; double f = 0;
    decode_scalar(elem_type, elems + idx * gguf_scalar_size(elem_type), &i, &u, &f);
    return i;
}
uint64_t GGUFValue::elem_uint(uint64_t idx) const {
    int64_t i = 0; uint64_t u = 0; double f = 0;
    decode_scalar(elem_type, elems + idx * gguf_scalar_size(elem_type), &i, &u, &f);
    return u;
}
double GGUFValue::elem_float(uint64_t idx) const {
    int64_t i = 0; uint64_t u = 0; double f = 0;
    decode_scalar(elem_type, elems + idx * gguf_scalar_size(elem_type), &i, &u, &f);
    return f;
}

// A key or tensor name from the file, for messages: control bytes (NUL included) escaped as \xNN,
// so a message is never cut short at a NUL; other bytes are kept as stored.
static std::string printable(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char ch : s) {
        if (ch < 0x20 || ch == 0x7f) {
            out += "\\x";
            out += hex[ch >> 4];
            out += hex[ch & 15];
        } else {
            out += char(ch);
        }
    }
    return out;
}

namespace {

// A bounds-checked reader over the mapping. `where` names the field being read for messages.
struct Cursor {
    const uint8_t* base;
    uint64_t size;
    uint64_t pos = 0;
    const std::string& path;
    std::string where;

    template <class... A>
    [[noreturn]] void error(const A&... a) const {
        fail<GGUFError>("GGUF file '", path, "': ", where, ": ", a...);
    }
    uint64_t left() const { return size - pos; }
    void need(uint64_t n, const char* what) const {
        if (n > left())
            error("truncated: ", what, " needs ", n, " bytes at offset ", pos, " but the file ends at ", size);
    }
    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base + pos, sizeof(T));
        pos += sizeof(T);
        return v;
    }
    std::string_view read_string(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > left()) error(what, " length ", len, " exceeds the ", left(), " bytes left in the file");
        std::string_view s(reinterpret_cast<const char*>(base + pos), size_t(len));
        pos += len;
        return s;
    }
    // A count of elements each at least min_size bytes must fit in what is left of the file.
    void check_count(uint64_t count, uint64_t min_size, const char* what) const {
        if (min_size > 0 && count > left() / min_size)
            error(what, " ", count, " is impossible: ", count, " entries of at least ", min_size,
                  " bytes cannot fit in the ", left(), " bytes left");
    }
};

GGUFType read_value_type(Cursor& c, const char* what) {
    const uint32_t t = c.read<uint32_t>(what);
    if (!valid_value_type(t)) c.error("unknown ", what, " ", t, " (valid: 0..12)");
    return GGUFType(t);
}

void read_value(Cursor& c, GGUFType type, GGUFValue& v, int depth) {
    v.type = type;
    if (type == GGUFType::STRING) {
        v.str = c.read_string("string value");
        return;
    }
    if (type != GGUFType::ARRAY) {
        const uint64_t n = gguf_scalar_size(type);
        c.need(n, gguf_type_name(type));
        decode_scalar(type, c.base + c.pos, &v.i, &v.u, &v.f);
        c.pos += n;
        return;
    }
    if (depth >= kMaxArrayDepth) c.error("arrays nested more than ", kMaxArrayDepth, " deep");
    v.elem_type = read_value_type(c, "array element type");
    v.count = c.read<uint64_t>("array length");
    c.check_count(v.count, min_encoded_size(v.elem_type), "array length");
    if (v.elem_type == GGUFType::STRING) {
        // No reserve: the vector grows only as far as real entries parse, so a corrupted count
        // fails on truncation before it can cost memory.
        for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(c.read_string("array string"));
    } else if (v.elem_type == GGUFType::ARRAY) {
        for (uint64_t k = 0; k < v.count; ++k) {
            v.items.emplace_back();
            read_value(c, GGUFType::ARRAY, v.items.back(), depth + 1);
        }
    } else {
        const uint64_t n = v.count * gguf_scalar_size(v.elem_type);  // no overflow: checked against left()
        v.elems = c.base + c.pos;
        c.pos += n;
    }
}

}  // namespace

std::shared_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
    auto map = std::make_shared<const MappedFile>(path);
    std::shared_ptr<GGUFFile> f(new GGUFFile(std::move(map)));
    f->parse();
    return f;
}

const GGUFKeyValue* GGUFFile::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const GGUFTensorInfo* GGUFFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

void GGUFFile::parse() {
    Cursor c{map_->data(), map_->size(), 0, map_->path(), "header"};

    // --- header
    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kMagic) {
        const uint8_t* m = c.base;
        char shown[5] = {0};
        for (int k = 0; k < 4; ++k) shown[k] = (m[k] >= 32 && m[k] < 127) ? char(m[k]) : '?';
        c.error("bad magic '", shown, "' (expected 'GGUF'): not a GGUF file");
    }
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) c.error("GGUF version 1 is not supported (it predates 64-bit counts); re-convert the model");
    if (version_ != 2 && version_ != 3) {
        if ((version_ & 0xFFFF) == 0 && (version_ >> 24) >= 1 && (version_ >> 24) <= 3)
            c.error("version field ", version_, " looks byte-swapped: big-endian GGUF files are not supported");
        c.error("unsupported version ", version_, " (ember reads versions 2 and 3)");
    }
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("key/value count");
    c.check_count(n_kv, 8 + 4 + 1, "key/value count");
    c.check_count(n_tensors, 8 + 4 + 8 + 4 + 8, "tensor count");

    // --- key/values
    for (uint64_t k = 0; k < n_kv; ++k) {
        c.where = "key/value #" + std::to_string(k);
        GGUFKeyValue& kv = kvs_.emplace_back();
        kv.key = c.read_string("key");
        if (kv.key.size() > kMaxKeyLength) c.error("key length ", kv.key.size(), " exceeds ", kMaxKeyLength);
        c.where += " ('" + printable(kv.key) + "')";
        const GGUFType type = read_value_type(c, "value type");
        read_value(c, type, kv.value, 0);
        if (!kv_index_.emplace(kv.key, k).second) c.error("duplicate key");
    }

    if (const GGUFKeyValue* a = find("general.alignment")) {
        c.where = "key 'general.alignment'";
        if (a->value.type != GGUFType::UINT32)
            c.error("must be uint32, found ", gguf_type_name(a->value.type));
        alignment_ = a->value.u;
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
            c.error("alignment ", alignment_, " is not a power of two");
    }

    // --- tensor infos
    for (uint64_t k = 0; k < n_tensors; ++k) {
        c.where = "tensor info #" + std::to_string(k);
        GGUFTensorInfo& t = tensors_.emplace_back();
        t.name = c.read_string("tensor name");
        c.where += " ('" + printable(t.name) + "')";
        t.n_dims = c.read<uint32_t>("dimension count");
        if (t.n_dims < 1 || t.n_dims > kMaxDims) c.error("has ", t.n_dims, " dimensions (must be 1..", kMaxDims, ")");
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            const uint64_t ne = c.read<uint64_t>("dimension");
            if (ne == 0) c.error("dimension ", d, " is 0 (each must be >= 1)");
            if (ne > uint64_t(INT64_MAX) || mul_overflows(n_elements, ne, &n_elements) || n_elements > uint64_t(INT64_MAX))
                c.error("element count overflows at dimension ", d, " (", ne, ")");
            t.ne[d] = int64_t(ne);
        }
        t.n_elements = int64_t(n_elements);
        const uint32_t type_id = c.read<uint32_t>("tensor type");
        const TypeTraits* tr = type_traits(type_id);
        if (!tr) c.error("unknown tensor type ", type_id);
        t.type = tr->type;
        if (t.ne[0] % tr->block_size != 0)
            c.error("row length ", t.ne[0], " is not a multiple of the ", tr->name, " block size ", tr->block_size);
        // nbytes = (ne0 / block) * type_size * rows; n_elements fits int64 so blocks do too
        if (mul_overflows(uint64_t(t.n_elements / tr->block_size), uint64_t(tr->type_size), &t.nbytes))
            c.error("byte size overflows");
        t.offset = c.read<uint64_t>("data offset");
        if (t.offset % alignment_ != 0) c.error("data offset ", t.offset, " is not a multiple of the alignment ", alignment_);
        if (!tensor_index_.emplace(t.name, k).second) c.error("duplicate tensor name");
    }

    // --- data section: starts at the next multiple of the alignment
    c.where = "data section";
    data_offset_ = c.pos + (alignment_ - c.pos % alignment_) % alignment_;
    if (n_tensors > 0 && data_offset_ > c.size)
        c.error("starts at ", data_offset_, ", past the end of the file (", c.size, " bytes)");
    std::vector<size_t> order(tensors_.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
    uint64_t prev_end = 0;
    const GGUFTensorInfo* prev = nullptr;
    for (size_t k : order) {
        GGUFTensorInfo& t = tensors_[k];
        c.where = "tensor '" + printable(t.name) + "'";
        uint64_t start, end;
        if (add_overflows(data_offset_, t.offset, &start) || add_overflows(start, t.nbytes, &end) || end > c.size)
            c.error("data [", t.offset, ", +", t.nbytes, ") lies outside the file (data section at ", data_offset_,
                    ", file size ", c.size, ")");
        if (prev && t.offset < prev_end)
            c.error("data overlaps tensor '", printable(prev->name), "'");
        t.data = c.base + start;
        prev_end = t.offset + t.nbytes;
        prev = &t;
    }
}

}  // namespace ember
