// gguf.h — the GGUF file format as a library of its own: header, key/values, tensor infos.
//
// GGUFFile::open memory-maps the file and validates everything before anything is used; the
// parsed structures point into the mapping (strings and tensor data are zero-copy views), and
// the mapping stays alive as long as the GGUFFile or any holder of mapping() does.
// Knows nothing of models: typed hyper-parameters are read by the model code through find().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"
#include "quants/types.h"

namespace ember {

enum class GGUFType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GGUFType t);  // "uint32", "string", ...
uint64_t gguf_scalar_size(GGUFType t);   // bytes of a fixed-size scalar; 0 for STRING and ARRAY

struct GGUFValue {
    GGUFType type = GGUFType::UINT8;
    // Scalars, widened: integers in i (signed types) or u (unsigned and bool), floats in f.
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0.0;
    std::string_view str;  // STRING (bytes as stored; normally UTF-8)
    // ARRAY
    GGUFType elem_type = GGUFType::UINT8;
    uint64_t count = 0;
    const uint8_t* elems = nullptr;          // fixed-size scalar elements, little-endian, unaligned
    std::vector<std::string_view> strings;   // when elem_type == STRING
    std::vector<GGUFValue> items;            // when elem_type == ARRAY (nested)

    // The i-th element of a scalar array, widened like the scalars above.
    int64_t elem_int(uint64_t idx) const;
    uint64_t elem_uint(uint64_t idx) const;
    double elem_float(uint64_t idx) const;
};

struct GGUFKeyValue {
    std::string_view key;
    GGUFValue value;
};

struct GGUFTensorInfo {
    std::string_view name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the row length (contiguous)
    GGMLType type = GGMLType::F32;
    uint64_t offset = 0;           // relative to the data section, as stored
    uint64_t nbytes = 0;
    int64_t n_elements = 0;
    const uint8_t* data = nullptr; // into the mapping
    int64_t n_rows() const { return n_elements / ne[0]; }
};

class GGUFFile {
public:
    // Throws FileError when the file cannot be opened, GGUFError when it is not valid GGUF.
    static std::shared_ptr<GGUFFile> open(const std::string& path);

    const std::string& path() const { return map_->path(); }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return map_->size(); }
    const std::vector<GGUFKeyValue>& kvs() const { return kvs_; }
    const std::vector<GGUFTensorInfo>& tensors() const { return tensors_; }
    const GGUFKeyValue* find(std::string_view key) const;          // nullptr when absent
    const GGUFTensorInfo* find_tensor(std::string_view name) const; // nullptr when absent
    std::shared_ptr<const MappedFile> mapping() const { return map_; }

private:
    explicit GGUFFile(std::shared_ptr<const MappedFile> map) : map_(std::move(map)) {}
    void parse();

    std::shared_ptr<const MappedFile> map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GGUFKeyValue> kvs_;
    std::vector<GGUFTensorInfo> tensors_;
    std::unordered_map<std::string_view, size_t> kv_index_, tensor_index_;
};

}  // namespace ember
