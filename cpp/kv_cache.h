// kv_cache.h — the paged KV cache: a pool of fixed-size blocks, a block table per sequence.
//
// A block holds block_size consecutive token positions of one sequence, for every layer, keys
// and values (fp16 by default, or f32). A sequence's position p lives in block
// table[p / block_size] at row p % block_size, so attention reads K/V through the table and a
// sequence never needs contiguous memory. Blocks are reference-counted: fork() gives a new
// sequence the same blocks (a shared prefix costs nothing), and the first write into a shared
// block copies it (copy-on-write), so the two sequences diverge without disturbing each other.
// Freeing a sequence returns every block whose count drops to zero.
//
// Memory layout: block after block, each holding, layer after layer, the layer's keys then its
// values, each for the n_head heads in turn, that head's part of block_size positions (so a
// block's memory is one span: pages become resident a block at a time, and copying a block is
// one copy). Values:
// block_size rows of v_dim / n_head elements. Keys: dimension-major, k_dim / n_head rows of
// block_size elements (element d of every position together), so that attention's scores take
// 16 positions' element d in one load, the positions in the vector lanes, and need no
// horizontal sums. Head-major: attention reads one head's part of a block, which then lies
// together (a short run the hardware prefetcher follows) instead of a slice of every long row.
#pragma once

#include <cstdint>
#include <vector>

#include "big_buffer.h"
#include "quants/types.h"

namespace ember {

struct KVCacheParams {
    int32_t n_layer = 0;
    int32_t k_dim = 0;        // elements per key row (n_head_kv * head_dim)
    int32_t v_dim = 0;
    int32_t n_head = 1;       // KV heads: k_dim and v_dim split evenly into head rows
    int32_t block_size = 16;  // tokens per block
    int32_t n_blocks = 0;
    int32_t n_seq_max = 1;    // sequence slots (ids 0 .. n_seq_max-1)
    GGMLType type = GGMLType::F16;  // F16 or F32
};

class KVCache {
public:
    explicit KVCache(const KVCacheParams& p);  // throws ArgumentError / Error (allocation)

    const KVCacheParams& params() const { return p_; }
    uint64_t bytes() const { return pool_.size(); }
    // Values: bytes from one row (position) of a head to the next within a block. Keys: bytes
    // from element d of a head's positions to element d + 1 (from one position to the next: the
    // element size). Both: bytes from head h's part of a block to h + 1's.
    uint64_t v_row_bytes() const { return v_row_bytes_; }
    uint64_t k_dim_stride() const { return elem_ * uint64_t(p_.block_size); }
    uint64_t elem_bytes() const { return elem_; }  // of keys and values alike (the cache's type)
    uint64_t k_head_stride() const { return k_row_bytes_ * uint64_t(p_.block_size); }
    uint64_t v_head_stride() const { return v_row_bytes_ * uint64_t(p_.block_size); }

    // --- sequences -------------------------------------------------------------------------
    // A new empty sequence; throws CapacityError when all n_seq_max slots are in use.
    int32_t seq_new();
    // A new sequence holding src's tokens, sharing its blocks.
    int32_t seq_fork(int32_t src);
    // A new sequence made of these blocks, all full, in order (a cached prefix of
    // blocks.size() x block_size tokens): each gains a reference. Throws ArgumentError for a
    // block that is not in use, CapacityError when no slot is free.
    int32_t seq_new_from_blocks(const std::vector<int32_t>& blocks);
    // Put `block` (in use, holding the same tokens) at index i of seq's table in place of the
    // block there, which must be full; the old block loses a reference, the new one gains one.
    // Two sequences that computed the same prefix end up sharing one copy of it.
    void seq_share_block(int32_t seq, int32_t i, int32_t block);
    // Drop the sequence and release its blocks.
    void seq_free(int32_t seq);
    // Keep only the first n tokens (blocks past them are released).
    void seq_truncate(int32_t seq, int32_t n);
    bool seq_exists(int32_t seq) const;
    int32_t seq_len(int32_t seq) const;               // tokens stored
    const std::vector<int32_t>& seq_blocks(int32_t seq) const;
    int32_t n_seq_active() const;

    // --- writing ----------------------------------------------------------------------------
    // Blocks that reserve(seq, n) would take from the pool (new blocks plus a copy of a shared
    // last block), without taking them.
    int32_t blocks_needed(int32_t seq, int32_t n) const;
    // Make rows len .. len+n-1 of seq writable: allocate blocks, copy a shared partly filled
    // last block. Throws CapacityError (and changes nothing) when the pool has too few blocks.
    void reserve(int32_t seq, int32_t n);
    // Mark n more rows as stored (after the forward pass wrote them).
    void commit(int32_t seq, int32_t n);

    // Head 0's value row for position pos of seq in a layer (pos must be reserved); head h's is
    // h * v_head_stride() bytes on. Keys: head 0's element 0 for the position; element d of
    // head h is h * k_head_stride() + d * k_dim_stride() bytes on.
    uint8_t* k_pos(int32_t layer, int32_t seq, int32_t pos);
    uint8_t* v_row(int32_t layer, int32_t seq, int32_t pos);
    // A layer's keys (values) in block 0; block b's are b * block_stride bytes later, head h's
    // part of them h * head_stride bytes after that.
    const uint8_t* k_layer(int32_t layer) const { return base() + uint64_t(layer) * layer_stride_; }
    const uint8_t* v_layer(int32_t layer) const { return k_layer(layer) + k_block_bytes_; }
    uint64_t k_block_stride() const { return block_stride_; }
    uint64_t v_block_stride() const { return block_stride_; }

    // --- accounting ---------------------------------------------------------------------------
    int32_t n_blocks_free() const { return int32_t(free_.size()); }
    int32_t n_blocks_used() const { return p_.n_blocks - n_blocks_free(); }
    int32_t block_refcount(int32_t block) const;
    // References held outside any sequence (the prefix cache's): retain needs a block in use;
    // the release that drops a block's count to zero returns it to the pool.
    void block_retain(int32_t block);
    void block_release(int32_t block);

private:
    struct Seq {
        bool active = false;
        int32_t len = 0;
        std::vector<int32_t> blocks;
    };
    const uint8_t* base() const { return pool_.data(); }
    uint8_t* base() { return pool_.data(); }
    Seq& seq(int32_t id);
    const Seq& seq(int32_t id) const;
    int32_t take_block();
    void release_block(int32_t b);
    void copy_block(int32_t from, int32_t to);

    KVCacheParams p_;
    uint64_t k_row_bytes_ = 0, v_row_bytes_ = 0, k_block_bytes_ = 0, v_block_bytes_ = 0, elem_ = 2;
    uint64_t layer_stride_ = 0, block_stride_ = 0;  // a layer's keys and values in a block; a block
    // Every layer's blocks: zero pages from the OS, resident only once blocks are used.
    BigBuffer pool_;
    std::vector<int32_t> refcount_;     // per block
    std::vector<int32_t> free_;         // stack of free blocks (lowest id on top)
    std::vector<Seq> seqs_;
};

}  // namespace ember
