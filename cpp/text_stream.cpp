// text_stream.cpp — see text_stream.h.
#include "text_stream.h"

#include <algorithm>

#include "common.h"

namespace ember {

TextStream::TextStream(const Tokenizer& tok, std::vector<std::string> stop, bool skip_special)
    : stop_(std::move(stop)), decoder_(tok, skip_special, /*continuation=*/true) {
    for (const std::string& s : stop_)
        if (s.empty()) fail<ArgumentError>("stop strings must not be empty");
}

bool TextStream::push(int32_t id) {
    pending_ += decoder_.push(id);
    // A stop string can only begin inside pending_: whatever could have started one was held.
    size_t at = std::string::npos;
    for (const std::string& s : stop_) at = std::min(at, pending_.find(s));
    if (at == std::string::npos) return false;
    pending_.resize(at);
    return true;
}

void TextStream::flush() { pending_ += decoder_.flush(); }

// The longest suffix of pending_ that is a proper prefix of a stop string must wait: the next
// token may complete the stop string.
std::string TextStream::take_ready(bool final) {
    size_t hold = 0;
    if (!final) {
        for (const std::string& s : stop_)
            for (size_t n = std::min(s.size() - 1, pending_.size()); n > hold; --n)
                if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
                    hold = n;
                    break;
                }
    }
    std::string ready = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    emitted_ += ready;
    return ready;
}

}  // namespace ember
