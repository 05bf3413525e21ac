// text_stream.h — a generation's sampled tokens turned into the text it emits: decoded without
// ever splitting a UTF-8 character (StreamDecoder), stop strings cut out and never emitted.
//
// Text that could still turn out to be the start of a stop string is held back until the next
// token settles it (or the generation ends). Generation (one sequence) and the Scheduler (many)
// both emit text through this, so the two agree to the byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ember {

class TextStream {
public:
    // Throws ArgumentError for an empty stop string. The tokens continue a prompt, so a
    // leading space of the first piece is kept.
    TextStream(const Tokenizer& tok, std::vector<std::string> stop, bool skip_special);

    // One sampled token that is part of the text (not an end-of-generation token). Returns true
    // when a stop string appeared: the text now ends right before it, and nothing more follows.
    bool push(int32_t id);
    // The generation ends for another reason (EOS, a length limit): decode what is still held.
    void flush();
    // The text that is safe to emit now; final: the generation has ended, hold nothing back.
    std::string take_ready(bool final);
    const std::string& emitted() const { return emitted_; }  // everything take_ready returned

private:
    std::vector<std::string> stop_;
    StreamDecoder decoder_;
    std::string pending_;  // decoded, not yet emitted (may start a stop string)
    std::string emitted_;
};

}  // namespace ember
