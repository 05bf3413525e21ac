// gguf_writer.cpp — the byte layout of GGUF v3, little-endian (the only byte order ember reads).
//
//   "GGUF" | u32 version 3 | u64 n_tensors | u64 n_kv
//   n_kv x   (string key, u32 value type, value)
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
//   zero padding to the alignment, then each tensor's data at its offset, padded likewise.
// A string is u64 length + bytes; an array is u32 element type, u64 count, then the elements
// (an element that is itself an array is again type, count, elements).
#include "gguf_writer.h"

#include <cstring>
#include <string>

#include "common.h"

namespace ember {

static constexpr uint32_t kVersion = 3;
static constexpr uint64_t kDefaultAlignment = 32;

namespace {

// Serializes into a byte buffer; the header is small next to the data, so it is built in
// memory and written in one go.
struct Bytes {
    std::string buf;

    template <class T>
    void put(T v) {
        char b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        buf.append(b, sizeof(T));
    }
    void put_string(std::string_view s) {
        put<uint64_t>(s.size());
        buf.append(s.data(), s.size());
    }
};

// A scalar from the widened fields of GGUFValue back to its stored width.
void put_scalar(Bytes& b, GGUFType t, const GGUFValue& v) {
    switch (t) {
        case GGUFType::UINT8: b.put<uint8_t>(uint8_t(v.u)); break;
        case GGUFType::BOOL: b.put<uint8_t>(v.u != 0); break;
        case GGUFType::INT8: b.put<int8_t>(int8_t(v.i)); break;
        case GGUFType::UINT16: b.put<uint16_t>(uint16_t(v.u)); break;
        case GGUFType::INT16: b.put<int16_t>(int16_t(v.i)); break;
        case GGUFType::UINT32: b.put<uint32_t>(uint32_t(v.u)); break;
        case GGUFType::INT32: b.put<int32_t>(int32_t(v.i)); break;
        case GGUFType::UINT64: b.put<uint64_t>(v.u); break;
        case GGUFType::INT64: b.put<int64_t>(v.i); break;
        case GGUFType::FLOAT32: b.put<float>(float(v.f)); break;
        case GGUFType::FLOAT64: b.put<double>(v.f); break;
        default: break;
    }
}

// The part of an array after its own type tag: element type, count, elements.
void put_array_body(Bytes& b, const GGUFValue& v, std::string_view key) {
    b.put<uint32_t>(uint32_t(v.elem_type));
    b.put<uint64_t>(v.count);
    if (v.elem_type == GGUFType::STRING) {
        if (v.strings.size() != v.count) fail<ArgumentError>("key '", key, "': string array holds ", v.strings.size(), " strings, count says ", v.count);
        for (std::string_view s : v.strings) b.put_string(s);
    } else if (v.elem_type == GGUFType::ARRAY) {
        if (v.items.size() != v.count) fail<ArgumentError>("key '", key, "': nested array holds ", v.items.size(), " arrays, count says ", v.count);
        for (const GGUFValue& item : v.items) put_array_body(b, item, key);
    } else {
        const uint64_t size = gguf_scalar_size(v.elem_type);
        if (size == 0) fail<ArgumentError>("key '", key, "': bad array element type ", uint32_t(v.elem_type));
        if (v.count > 0 && !v.elems) fail<ArgumentError>("key '", key, "': array of ", v.count, " elements has no data");
        // Elements are kept as stored (little-endian, unaligned): copied byte for byte.
        if (v.count) b.buf.append(reinterpret_cast<const char*>(v.elems), size_t(v.count * size));
    }
}

void put_value(Bytes& b, const GGUFValue& v, std::string_view key) {
    b.put<uint32_t>(uint32_t(v.type));
    if (v.type == GGUFType::STRING) b.put_string(v.str);
    else if (v.type == GGUFType::ARRAY) put_array_body(b, v, key);
    else if (gguf_scalar_size(v.type) > 0) put_scalar(b, v.type, v);
    else fail<ArgumentError>("key '", key, "': bad value type ", uint32_t(v.type));
}

uint64_t align_up(uint64_t n, uint64_t a) { return n + (a - n % a) % a; }

}  // namespace

uint64_t GGUFWriter::tensor_nbytes(const GGUFTensorOut& t) {
    const TypeTraits& tr = type_traits(t.type);
    if (t.ne[0] % tr.block_size != 0)
        fail<ArgumentError>("tensor '", t.name, "': row length ", t.ne[0], " is not a multiple of the ", tr.name, " block size ", tr.block_size);
    uint64_t rows = 1;
    for (uint32_t d = 1; d < t.n_dims; ++d) rows *= uint64_t(t.ne[d]);
    return row_size(t.type, t.ne[0]) * rows;
}

GGUFWriter::GGUFWriter(OutputFile& out, const std::vector<GGUFKeyValue>& kvs, std::vector<GGUFTensorOut> tensors)
    : out_(out), tensors_(std::move(tensors)) {
    alignment_ = kDefaultAlignment;
    for (const GGUFKeyValue& kv : kvs) {
        if (kv.key != "general.alignment") continue;
        if (kv.value.type != GGUFType::UINT32 || kv.value.u == 0 || (kv.value.u & (kv.value.u - 1)) != 0)
            fail<ArgumentError>("general.alignment must be a uint32 power of two");
        alignment_ = kv.value.u;
    }

    Bytes b;
    b.put<uint32_t>(0x46554747);  // "GGUF"
    b.put<uint32_t>(kVersion);
    b.put<uint64_t>(tensors_.size());
    b.put<uint64_t>(kvs.size());
    for (const GGUFKeyValue& kv : kvs) {
        b.put_string(kv.key);
        put_value(b, kv.value, kv.key);
    }
    uint64_t offset = 0;
    for (const GGUFTensorOut& t : tensors_) {
        if (t.n_dims < 1 || t.n_dims > 4) fail<ArgumentError>("tensor '", t.name, "': ", t.n_dims, " dimensions (must be 1..4)");
        b.put_string(t.name);
        b.put<uint32_t>(t.n_dims);
        for (uint32_t d = 0; d < t.n_dims; ++d) b.put<uint64_t>(uint64_t(t.ne[d]));
        b.put<uint32_t>(uint32_t(t.type));
        b.put<uint64_t>(offset);
        offset = align_up(offset + tensor_nbytes(t), alignment_);
    }
    b.buf.append(size_t(align_up(b.buf.size(), alignment_) - b.buf.size()), '\0');
    out_.write(b.buf.data(), b.buf.size());
}

void GGUFWriter::write_tensor_data(const void* data, uint64_t nbytes) {
    if (next_ >= tensors_.size()) fail<ArgumentError>("GGUF writer: more tensor data than the ", tensors_.size(), " tensors announced");
    const GGUFTensorOut& t = tensors_[next_];
    const uint64_t want = tensor_nbytes(t);
    if (nbytes != want) fail<ArgumentError>("tensor '", t.name, "': ", nbytes, " bytes of data, its type and shape need ", want);
    out_.write(data, nbytes);
    out_.write_zeros(align_up(nbytes, alignment_) - nbytes);
    ++next_;
}

void GGUFWriter::finish() {
    if (next_ != tensors_.size())
        fail<ArgumentError>("GGUF writer: ", next_, " of ", tensors_.size(), " tensors written");
}

}  // namespace ember
