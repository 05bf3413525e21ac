// quantize.h — `ember quantize IN OUT TYPE`: a GGUF model rewritten with quantized weights.
//
// The driver: reads IN (gguf.h), asks quantize_rules.h for each tensor's output type, converts
// every tensor whose type changes (dequantize a chunk of rows to float32, quantize it with the
// kernels of quants/dispatch.h, chunks spread over threads), and writes OUT with gguf_writer.h
// through an OutputFile, so OUT appears only when complete. The metadata is copied with
// general.file_type and general.quantization_version set as llama.cpp sets them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ember {

struct QuantizeParams {
    int n_threads = 0;              // 0: std::thread::hardware_concurrency()
    bool allow_requantize = false;  // allow lowering an already-quantized tensor's bits per weight
    // Receives one line per tensor and the summary lines (no trailing newline); null: quiet.
    // Called on the calling thread, between tensors; it may throw to cancel the run.
    std::function<void(const std::string&)> log;
};

struct QuantizeStats {
    std::string type;               // the TYPE asked for, canonical ("q4_k_m")
    uint32_t file_type = 0;         // written to general.file_type
    std::string file_type_name;     // "MOSTLY_Q4_K_M"
    int64_t n_tensors = 0;
    int64_t n_converted = 0;        // type changed: dequantized / quantized
    int64_t n_copied = 0;           // type kept: bytes copied unchanged
    int64_t n_fallback = 0;         // the rules' type did not fit the row length
    std::vector<std::pair<std::string, int64_t>> tensors_per_type;  // output types, by type id
    uint64_t input_bytes = 0, output_bytes = 0;  // file sizes
    double seconds = 0;
    int n_threads = 0;
};

// Throws ArgumentError (unknown TYPE, OUT is IN, a refused requantization, bad n_threads),
// FileError / GGUFError (IN missing or not valid GGUF, unconvertible data), OutputFileError
// (OUT cannot be created or written). On any error OUT is left as it was.
QuantizeStats quantize_model(const std::string& input, const std::string& output, const std::string& type,
                             const QuantizeParams& params = {});

}  // namespace ember
