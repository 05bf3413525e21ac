// gguf_writer.h — GGUF v3 serialization: header, key/values, tensor infos, aligned data.
//
// The writer knows the format and nothing else: the caller hands it the key/values (usually
// a GGUFFile's own, see gguf.h: strings and arrays are views the caller keeps alive) and the
// tensor table, then streams each tensor's bytes in table order. Offsets follow from the types
// and shapes, so the header is written first and data never has to be held back. Where the
// bytes go, and that a failed write leaves nothing behind, is OutputFile's job (output_file.h).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "gguf.h"
#include "output_file.h"
#include "quants/types.h"

namespace ember {

struct GGUFTensorOut {
    std::string_view name;
    uint32_t n_dims = 1;
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order, ne[0] the row length
    GGMLType type = GGMLType::F32;
};

class GGUFWriter {
public:
    // Writes the header, the key/values (in the order given) and the tensor infos. The data
    // alignment is general.alignment when present (uint32, a power of two), else 32.
    // Throws ArgumentError for an inconsistent value or tensor, OutputFileError on write errors.
    GGUFWriter(OutputFile& out, const std::vector<GGUFKeyValue>& kvs, std::vector<GGUFTensorOut> tensors);

    // The next tensor's bytes; nbytes must equal tensor_nbytes(next_tensor()).
    void write_tensor_data(const void* data, uint64_t nbytes);
    size_t next_tensor() const { return next_; }
    // Checks that every tensor was written. The caller then commits the OutputFile.
    void finish();

    uint64_t alignment() const { return alignment_; }
    static uint64_t tensor_nbytes(const GGUFTensorOut& t);

private:
    OutputFile& out_;
    std::vector<GGUFTensorOut> tensors_;
    uint64_t alignment_ = 32;
    size_t next_ = 0;
};

}  // namespace ember
