"""A deterministic corpus of at least 2,000 strings for tokenizer parity tests.

Hand-written seeds cover each hard case (prose, indented code, numbers, whitespace runs, tabs and
newlines, accented Latin, CJK, Arabic, emoji with ZWJ sequences and modifiers, special-token
strings, the empty string); random splices and concatenations of the seeds, with random
whitespace between, make the rest.
"""

import random
from typing import List

SEEDS = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "Hello",
    " Hello",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "It's a dog's life; they're here, we've gone, I'm sure you'll see, he'd know.",
    "IT'S LOUD, THEY'RE LOUDER, WE'VE NOTICED.",
    "Once upon a time, in a land far, far away, there lived a small dragon named Ember.",
    "def main(argv):\n    for i in range(10):\n        print(i)\n    return 0\n",
    "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "    indented by four\n        by eight\n\t\ttwo tabs\n",
    "if (x == 1 && y != 2) { z += 3; } // comment",
    "SELECT * FROM users WHERE id = 7 ORDER BY name;",
    "<html><body><p class=\"x\">Text</p></body></html>",
    "3.14159 2.71828 1e-10 -42 +7 1,234,567.89 0x1F 0b1010",
    "1234567890 12345 123 12 1",
    "In 2024, 7 of 10 people (70%) said $1,000 was enough.",
    "phone: +1 (555) 123-4567, date 2026-11-24 08:30",
    "a  b   c    d     e",
    "trailing spaces   ",
    "   leading spaces",
    "line one\nline two\n\nline four\r\nwindows line\rold mac",
    "\n\n\n",
    " \n \n ",
    "tab\tseparated\tvalues\t\t",
    "naïve café résumé coöperate façade jalapeño Æsir Ørsted Straße",
    "Ça va? Où est la bibliothèque? À bientôt!",
    "Łódź, Kraków, Gdańsk — żółć gęślą jaźń",
    "Ελληνικά: Καλημέρα κόσμε",
    "Русский текст: Привет, мир!",
    "日本語のテキスト：こんにちは世界。",
    "中文：你好，世界！我爱编程。",
    "한국어: 안녕하세요 세계",
    "العربية: مرحبا بالعالم",
    "עברית: שלום עולם",
    "हिन्दी: नमस्ते दुनिया",
    "ไทย: สวัสดีชาวโลก",
    "emoji 😀😃😄 👍🏽 ❤️ 🇫🇷 🇯🇵",
    "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 and 👩🏾‍💻",
    "math ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ → ⇒ ∀ ∃",
    "symbols © ® ™ § ¶ † ‡ • … ‰ ′ ″",
    "currency € £ ¥ ₹ ₽ ₿",
    "quotes “smart” ‘single’ «guillemets» „low“",
    "dashes - – — and ellipsis...",
    "mixed 中文 English 日本語 123 😀",
    "zero\u200bwidth\u200cjoiner\u200dtest",
    "nbsp\u00a0here and\u2003em space",
    "combining e\u0301 a\u0308 n\u0303",
    "<|im_start|>user\nHello<|im_end|>",
    "<|im_start|>assistant\n<|im_end|>\n<|endoftext|>",
    "<bos><start_of_turn>user\nHi<end_of_turn>",
    "<s>[INST] Hi [/INST]</s>",
    "<|endoftext|>",
    "not a special <|im_star|> token",
    "'s 't 're 've 'm 'll 'd",
    "don't won't can't shouldn't",
    "https://example.com/path?query=1&other=two#frag",
    "user@example.com, first.last+tag@mail.co.uk",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "!!! ??? ... ,,, ;;; ::: --- ___ *** ### @@@",
    "a" * 50,
    " " * 17 + "x",
    "ab" * 30,
]


def corpus(n: int = 2000, seed: int = 1234) -> List[str]:
    rng = random.Random(seed)
    out = list(SEEDS)
    joiners = ["", " ", "  ", "\n", "\t", " \n", "\n\n", "   "]
    while len(out) < n:
        kind = rng.random()
        a, b = rng.choice(SEEDS), rng.choice(SEEDS)
        if kind < 0.4:
            s = a + rng.choice(joiners) + b
        elif kind < 0.7 and a:
            i, j = sorted(rng.randrange(len(a) + 1) for _ in range(2))
            s = a[i:j] + rng.choice(joiners) + b[: rng.randrange(len(b) + 1)]
        elif kind < 0.85:
            s = rng.choice(joiners) + a + rng.choice(joiners)
        else:
            s = "".join(rng.choice(SEEDS[1:]) + rng.choice(joiners) for _ in range(rng.randint(2, 5)))
        out.append(s)
    return out
