// prefix_cache.h — full KV blocks kept for reuse: a request whose tokens begin with a cached run
// of blocks adopts them instead of computing them again (a shared system prompt, a chat history,
// a preempted request coming back).
//
// An entry caches one full block: block_size token ids that follow the prefix its parent entry
// caches (no parent: the start of a sequence). Entries are found by a chained hash of (the
// parent's hash, the block's ids); a lookup compares the ids and the parent too, so a hash
// collision can never hand out the wrong block. The cache holds one reference on each block, so
// a cached block outlives the sequences that computed it. Blocks no sequence references are
// evicted least recently used first, and only when the pool needs them; only leaves go (an entry
// with no cached children), so every entry's parent is alive. A sequence that holds a block also
// holds its parent's block (a sequence's table is a prefix), so a block only the cache
// references has no referenced descendants: every such block can be evicted (n_evictable()).
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "kv_cache.h"

namespace ember {

class PrefixCache {
public:
    struct Entry {
        uint64_t hash = 0;
        const Entry* parent = nullptr;
        std::vector<int32_t> tokens;  // block_size ids
        int32_t block = -1;
        int32_t n_children = 0;
    };
    using Chain = std::vector<const Entry*>;  // entries of a sequence's first blocks, in order

    explicit PrefixCache(KVCache& kv);
    ~PrefixCache();  // releases every reference (the KV cache must still be alive)
    PrefixCache(const PrefixCache&) = delete;
    PrefixCache& operator=(const PrefixCache&) = delete;

    // The longest run of cached blocks that holds tokens[0 .. k x block_size), k <= max_blocks.
    Chain match(const int32_t* tokens, int32_t max_blocks) const;
    // Cache `block`, which holds block_size ids after the prefix `parent` caches (nullptr: the
    // start). Returns the entry that now caches these ids: a new one, or one already there, whose
    // block the caller should share in place of its own (KVCache::seq_share_block). nullptr when a
    // different entry owns the hash (a collision): nothing is cached.
    const Entry* insert(const Entry* parent, const int32_t* tokens, int32_t block);
    // The chain was just used: it becomes the most recently used, its first block most of all
    // (children are evicted before their parents).
    void touch(const Chain& chain);
    // Return up to n blocks that only the cache references to the pool, least recently used
    // first; returns how many were freed.
    int32_t evict(int32_t n);
    int32_t n_evictable() const;
    int32_t size() const { return int32_t(lru_.size()); }

    static uint64_t chain_hash(uint64_t parent, const int32_t* tokens, int32_t n);

private:
    using Iter = std::list<Entry>::iterator;
    bool evictable(const Entry& e) const { return e.n_children == 0 && kv_.block_refcount(e.block) == 1; }
    void drop(Iter it);

    KVCache& kv_;
    int32_t block_size_;
    std::list<Entry> lru_;  // most recently used first; list nodes keep Entry addresses stable
    std::unordered_map<uint64_t, Iter> by_hash_;
};

}  // namespace ember
