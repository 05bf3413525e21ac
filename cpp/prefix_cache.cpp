// prefix_cache.cpp — see prefix_cache.h.
#include "prefix_cache.h"

#include <algorithm>

#include "common.h"

namespace ember {

namespace {
uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
}  // namespace

uint64_t PrefixCache::chain_hash(uint64_t parent, const int32_t* tokens, int32_t n) {
    uint64_t h = mix64(parent + 0x9e3779b97f4a7c15ull);
    for (int32_t i = 0; i < n; ++i) h = mix64(h ^ (uint64_t(uint32_t(tokens[i])) + 0x9e3779b97f4a7c15ull));
    return h;
}

PrefixCache::PrefixCache(KVCache& kv) : kv_(kv), block_size_(kv.params().block_size) {}

PrefixCache::~PrefixCache() {
    for (const Entry& e : lru_) kv_.block_release(e.block);
}

PrefixCache::Chain PrefixCache::match(const int32_t* tokens, int32_t max_blocks) const {
    Chain out;
    const Entry* parent = nullptr;
    for (int32_t b = 0; b < max_blocks; ++b) {
        const int32_t* ids = tokens + size_t(b) * size_t(block_size_);
        const auto it = by_hash_.find(chain_hash(parent ? parent->hash : 0, ids, block_size_));
        if (it == by_hash_.end()) break;
        const Entry& e = *it->second;
        if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), ids)) break;
        out.push_back(&e);
        parent = &e;
    }
    return out;
}

const PrefixCache::Entry* PrefixCache::insert(const Entry* parent, const int32_t* tokens, int32_t block) {
    const uint64_t h = chain_hash(parent ? parent->hash : 0, tokens, block_size_);
    const auto it = by_hash_.find(h);
    if (it != by_hash_.end()) {
        const Entry& e = *it->second;
        const bool same = e.parent == parent && std::equal(e.tokens.begin(), e.tokens.end(), tokens);
        return same ? &e : nullptr;
    }
    kv_.block_retain(block);
    Entry e;
    e.hash = h;
    e.parent = parent;
    e.tokens.assign(tokens, tokens + block_size_);
    e.block = block;
    lru_.push_front(std::move(e));
    by_hash_.emplace(h, lru_.begin());
    if (parent) ++const_cast<Entry*>(parent)->n_children;
    return &lru_.front();
}

void PrefixCache::touch(const Chain& chain) {
    // Deepest first, so the chain's root ends up the most recent: parents outlast children.
    for (auto e = chain.rbegin(); e != chain.rend(); ++e) {
        const auto it = by_hash_.find((*e)->hash);
        if (it != by_hash_.end() && &*it->second == *e) lru_.splice(lru_.begin(), lru_, it->second);
    }
}

void PrefixCache::drop(Iter it) {
    if (it->parent) --const_cast<Entry*>(it->parent)->n_children;
    by_hash_.erase(it->hash);
    kv_.block_release(it->block);
    lru_.erase(it);
}

int32_t PrefixCache::evict(int32_t n) {
    int32_t freed = 0;
    // Oldest first. Evicting a leaf may make its parent one; the parent was used no earlier, so
    // it lies ahead in the same pass. Further passes only catch orders touch() did not settle.
    for (bool progress = true; freed < n && progress;) {
        progress = false;
        for (auto it = lru_.end(); it != lru_.begin() && freed < n;) {
            --it;
            if (!evictable(*it)) continue;
            const auto victim = it;
            ++it;  // stays valid: list erasure invalidates only the victim
            drop(victim);
            ++freed;
            progress = true;
        }
    }
    return freed;
}

int32_t PrefixCache::n_evictable() const {
    int32_t n = 0;
    for (const Entry& e : lru_) n += kv_.block_refcount(e.block) == 1;
    return n;
}

}  // namespace ember
