// kv_cache.cpp — block pool, block tables, fork / copy-on-write / free (see kv_cache.h).
#include "kv_cache.h"

#include <algorithm>
#include <cstring>

#include "common.h"

namespace ember {

KVCache::KVCache(const KVCacheParams& p) : p_(p) {
    if (p.type != GGMLType::F16 && p.type != GGMLType::F32)
        fail<ArgumentError>("KV cache type must be f16 or f32, got ", type_traits(p.type).name);
    if (p.n_layer <= 0 || p.k_dim <= 0 || p.v_dim <= 0 || p.n_head <= 0 || p.k_dim % p.n_head != 0 ||
        p.v_dim % p.n_head != 0)
        fail<ArgumentError>("KV cache: bad geometry");
    if (p.block_size <= 0 || p.block_size > 4096) fail<ArgumentError>("KV cache block size must be in [1, 4096], got ", p.block_size);
    if (p.n_blocks <= 0) fail<ArgumentError>("KV cache needs at least one block, got ", p.n_blocks);
    if (p.n_seq_max <= 0) fail<ArgumentError>("n_seq_max must be positive, got ", p.n_seq_max);
    const uint64_t elem = p.type == GGMLType::F16 ? 2 : 4;
    // Head rows padded to 8 bytes keep every row aligned for the SIMD loads (a head's keys take
    // the same room, dimension-major: k_row_bytes_ * block_size >= head_dim * block_size * elem).
    elem_ = elem;
    k_row_bytes_ = (uint64_t(p.k_dim / p.n_head) * elem + 7) / 8 * 8;
    v_row_bytes_ = (uint64_t(p.v_dim / p.n_head) * elem + 7) / 8 * 8;
    k_block_bytes_ = k_row_bytes_ * uint64_t(p.block_size) * uint64_t(p.n_head);
    v_block_bytes_ = v_row_bytes_ * uint64_t(p.block_size) * uint64_t(p.n_head);
    uint64_t total = 0;
    layer_stride_ = k_block_bytes_ + v_block_bytes_;
    if (mul_overflows(layer_stride_, uint64_t(p.n_layer), &block_stride_) ||
        mul_overflows(block_stride_, uint64_t(p.n_blocks), &total) || total > (uint64_t(1) << 46))
        fail<ArgumentError>("KV cache of ", p.n_blocks, " blocks x ", p.block_size, " tokens is too large");
    try {
        pool_ = BigBuffer(total);
    } catch (const CapacityError&) {
        fail<CapacityError>("could not allocate the KV cache (", total >> 20, " MiB)");
    }
    refcount_.assign(size_t(p.n_blocks), 0);
    free_.reserve(size_t(p.n_blocks));
    for (int32_t b = p.n_blocks - 1; b >= 0; --b) free_.push_back(b);
    seqs_.resize(size_t(p.n_seq_max));
}

KVCache::Seq& KVCache::seq(int32_t id) {
    if (id < 0 || id >= p_.n_seq_max || !seqs_[size_t(id)].active) fail<ArgumentError>("no sequence with id ", id);
    return seqs_[size_t(id)];
}
const KVCache::Seq& KVCache::seq(int32_t id) const { return const_cast<KVCache*>(this)->seq(id); }

bool KVCache::seq_exists(int32_t id) const { return id >= 0 && id < p_.n_seq_max && seqs_[size_t(id)].active; }
int32_t KVCache::seq_len(int32_t id) const { return seq(id).len; }
const std::vector<int32_t>& KVCache::seq_blocks(int32_t id) const { return seq(id).blocks; }
int32_t KVCache::n_seq_active() const {
    return int32_t(std::count_if(seqs_.begin(), seqs_.end(), [](const Seq& s) { return s.active; }));
}

int32_t KVCache::block_refcount(int32_t block) const {
    if (block < 0 || block >= p_.n_blocks) fail<ArgumentError>("no block ", block);
    return refcount_[size_t(block)];
}

int32_t KVCache::seq_new() {
    for (size_t i = 0; i < seqs_.size(); ++i) {
        if (!seqs_[i].active) {
            seqs_[i].active = true;
            seqs_[i].len = 0;
            seqs_[i].blocks.clear();
            seqs_[i].blocks.reserve(size_t(p_.n_blocks));
            return int32_t(i);
        }
    }
    fail<CapacityError>("all ", p_.n_seq_max, " sequence slots are in use");
}

int32_t KVCache::seq_fork(int32_t src) {
    const Seq& s = seq(src);
    const int32_t id = seq_new();
    Seq& d = seqs_[size_t(id)];
    // Share exactly the blocks that hold src's tokens (not any reserved past them).
    const size_t n_used = size_t((s.len + p_.block_size - 1) / p_.block_size);
    d.blocks.assign(s.blocks.begin(), s.blocks.begin() + std::min(n_used, s.blocks.size()));
    for (int32_t b : d.blocks) ++refcount_[size_t(b)];
    d.len = s.len;
    return id;
}

int32_t KVCache::seq_new_from_blocks(const std::vector<int32_t>& blocks) {
    for (int32_t b : blocks)
        if (b < 0 || b >= p_.n_blocks || refcount_[size_t(b)] <= 0)
            fail<ArgumentError>("seq_new_from_blocks: block ", b, " is not in use");
    if (int64_t(blocks.size()) * p_.block_size > INT32_MAX) fail<ArgumentError>("seq_new_from_blocks: too many blocks");
    const int32_t id = seq_new();
    Seq& d = seqs_[size_t(id)];
    d.blocks = blocks;
    for (int32_t b : d.blocks) ++refcount_[size_t(b)];
    d.len = int32_t(blocks.size()) * p_.block_size;
    return id;
}

void KVCache::seq_share_block(int32_t id, int32_t i, int32_t block) {
    Seq& s = seq(id);
    if (i < 0 || int64_t(i + 1) * p_.block_size > s.len)
        fail<ArgumentError>("seq_share_block: block ", i, " of sequence ", id, " (", s.len, " tokens) is not full");
    if (block < 0 || block >= p_.n_blocks || refcount_[size_t(block)] <= 0)
        fail<ArgumentError>("seq_share_block: block ", block, " is not in use");
    if (s.blocks[size_t(i)] == block) return;
    ++refcount_[size_t(block)];
    release_block(s.blocks[size_t(i)]);
    s.blocks[size_t(i)] = block;
}

void KVCache::block_retain(int32_t b) {
    if (b < 0 || b >= p_.n_blocks || refcount_[size_t(b)] <= 0) fail<ArgumentError>("block_retain: block ", b, " is not in use");
    ++refcount_[size_t(b)];
}

void KVCache::block_release(int32_t b) {
    if (b < 0 || b >= p_.n_blocks || refcount_[size_t(b)] <= 0) fail<ArgumentError>("block_release: block ", b, " is not in use");
    release_block(b);
}

void KVCache::seq_free(int32_t id) {
    Seq& s = seq(id);
    for (int32_t b : s.blocks) release_block(b);
    s.blocks.clear();
    s.len = 0;
    s.active = false;
}

void KVCache::seq_truncate(int32_t id, int32_t n) {
    Seq& s = seq(id);
    if (n < 0 || n > s.len) fail<ArgumentError>("cannot truncate sequence ", id, " of ", s.len, " tokens to ", n);
    const size_t keep = size_t((n + p_.block_size - 1) / p_.block_size);
    while (s.blocks.size() > keep) {
        release_block(s.blocks.back());
        s.blocks.pop_back();
    }
    s.len = n;
}

int32_t KVCache::take_block() {
    const int32_t b = free_.back();
    free_.pop_back();
    refcount_[size_t(b)] = 1;
    return b;
}

void KVCache::release_block(int32_t b) {
    if (--refcount_[size_t(b)] == 0) free_.push_back(b);
}

void KVCache::copy_block(int32_t from, int32_t to) {
    std::memcpy(base() + uint64_t(to) * block_stride_, base() + uint64_t(from) * block_stride_, block_stride_);
}

int32_t KVCache::blocks_needed(int32_t id, int32_t n) const {
    const Seq& s = seq(id);
    if (n <= 0) return 0;
    const int64_t have = int64_t(s.blocks.size());
    const int64_t need = (int64_t(s.len) + n + p_.block_size - 1) / p_.block_size;
    int64_t count = std::max<int64_t>(0, need - have);
    // The block that receives position len is written; if another sequence shares it, it is copied.
    const int64_t first = s.len / p_.block_size;
    if (first < have && refcount_[size_t(s.blocks[size_t(first)])] > 1) ++count;
    return int32_t(std::min<int64_t>(count, INT32_MAX));
}

void KVCache::reserve(int32_t id, int32_t n) {
    if (n <= 0) return;
    const int32_t need = blocks_needed(id, n);
    if (need > n_blocks_free())
        fail<CapacityError>("KV cache full: sequence ", id, " needs ", need, " more blocks, ", n_blocks_free(), " of ",
                            p_.n_blocks, " are free");
    Seq& s = seq(id);
    const size_t first = size_t(s.len / p_.block_size);
    if (first < s.blocks.size() && refcount_[size_t(s.blocks[first])] > 1) {
        const int32_t fresh = take_block();
        copy_block(s.blocks[first], fresh);
        release_block(s.blocks[first]);
        s.blocks[first] = fresh;
    }
    const size_t total = size_t((int64_t(s.len) + n + p_.block_size - 1) / p_.block_size);
    while (s.blocks.size() < total) s.blocks.push_back(take_block());
}

void KVCache::commit(int32_t id, int32_t n) {
    Seq& s = seq(id);
    if (n < 0 || int64_t(s.len) + n > int64_t(s.blocks.size()) * p_.block_size)
        fail<ArgumentError>("commit of ", n, " rows past the reserved blocks of sequence ", id);
    s.len += n;
}

uint8_t* KVCache::k_pos(int32_t layer, int32_t id, int32_t pos) {
    const Seq& s = seqs_[size_t(id)];
    const int32_t b = s.blocks[size_t(pos / p_.block_size)];
    return base() + uint64_t(b) * block_stride_ + uint64_t(layer) * layer_stride_ + uint64_t(pos % p_.block_size) * elem_;
}

uint8_t* KVCache::v_row(int32_t layer, int32_t id, int32_t pos) {
    const Seq& s = seqs_[size_t(id)];
    const int32_t b = s.blocks[size_t(pos / p_.block_size)];
    return base() + uint64_t(b) * block_stride_ + uint64_t(layer) * layer_stride_ + k_block_bytes_ +
           uint64_t(pos % p_.block_size) * v_row_bytes_;
}

}  // namespace ember
