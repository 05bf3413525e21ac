"""The token sampler (cpp/sampler.h, through the internal _core.Sampler) against a float64 numpy
reference of its chain written here: penalties -> temperature -> top-k -> top-p -> min-p -> draw.

Three kinds of check: the kept support and the drawn frequencies (chi-square and per-token standard
errors over sample_many draws), the exact token sequence for a seed (a pure-Python mt19937_64 and
the documented draw: first candidate in (p desc, id asc) order whose cumulative probability passes
u), and greedy picks under the penalty window. Every seed is fixed, so each run sees the same draws."""

import math
import statistics
from collections import Counter

import numpy as np
import pytest

from ember import _core

N_DRAWS = 20000
P_VALUE = 1e-4  # chi-square rejection threshold
MAX_SIGMA = 5.0  # per-token frequency tolerance in standard errors
N_VOCAB = 48


def f32(x):
    """A parameter as the sampler sees it (its fields are float32)."""
    return float(np.float32(x))


# --- the reference --------------------------------------------------------------------------

def ref_penalize(logits, history, repeat_penalty=1.0, repeat_last_n=64, presence_penalty=0.0,
                 frequency_penalty=0.0):
    """Step 1 in float64: the window is the last repeat_last_n accepted tokens (all for -1)."""
    x = np.asarray(logits, dtype=np.float64).copy()
    if repeat_last_n == 0:
        return x
    window = list(history) if repeat_last_n < 0 else list(history)[-repeat_last_n:]
    rp, pres, freq = f32(repeat_penalty), f32(presence_penalty), f32(frequency_penalty)
    for tok, count in Counter(window).items():
        v = x[tok]
        if rp != 1.0:
            v = v / rp if v > 0 else v * rp
        x[tok] = v - (count * freq + pres)
    return x


def ref_greedy(logits, history=(), **pen):
    """Step 2: argmax of the penalized logits, NaN as impossible, lowest id on ties; also returns
    the gap to the runner-up, so callers can skip picks that float32 rounding could flip."""
    x = ref_penalize(logits, history, **pen)
    x = np.where(np.isnan(x), -np.inf, x)
    best = int(np.argmax(x))  # numpy's argmax returns the first maximum
    rest = np.delete(x, best)
    gap = float(x[best] - rest.max()) if rest.size else math.inf
    return best, gap


def ref_chain(logits, history=(), *, temperature, top_k, top_p, min_p, **pen):
    """Steps 1 and 3-6. Returns (ids, probs, margin): the kept tokens in draw order (p desc, id asc),
    their renormalized probabilities, and the smallest distance of any top-p / min-p cut from its
    threshold (a fixture whose margin is tiny would make the float32 sampler's choice a coin toss)."""
    x = ref_penalize(logits, history, **pen)
    x = np.where(np.isnan(x), -np.inf, x)
    ok = x > -np.inf
    assert ok.any()
    mx = x[ok].max()
    if mx == np.inf:
        e = (x == np.inf).astype(np.float64)
    else:
        e = np.zeros_like(x)
        e[ok] = np.exp((x[ok] - mx) / f32(temperature))
    ids = np.nonzero(e > 0)[0]
    e = e[ids]
    order = np.lexsort((ids, -e))
    ids, e = ids[order], e[order]
    if 0 < top_k < len(ids):
        ids, e = ids[:top_k], e[:top_k]
    margin = math.inf
    keep = len(ids)
    if top_p < 1:
        cum = np.cumsum(e) / e.sum()
        tp = f32(top_p)
        keep = min(keep, int(np.searchsorted(cum, tp, side="left")) + 1)  # first cum >= p
        margin = min(margin, float(np.min(np.abs(cum - tp))))
    if min_p > 0:
        ratio = e / e[0]
        mp = f32(min_p)
        keep = min(keep, int(np.count_nonzero(ratio >= mp)))
        inexact = ratio != 1.0  # the most probable (and its exact ties) have ratio 1 in float32 too
        if inexact.any():
            margin = min(margin, float(np.min(np.abs(ratio[inexact] - mp))))
    ids, e = ids[:keep], e[:keep]
    return ids, e / e.sum(), margin


class MT19937_64:
    """std::mt19937_64, written out: the sampler's generator, so a seed's tokens can be predicted."""
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.mt = [seed & self.MASK]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & self.MASK)
        self.i = 312

    def _twist(self):
        mt = self.mt
        for i in range(312):
            x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            mt[i] = mt[(i + 156) % 312] ^ xa
        self.i = 0

    def __call__(self):
        if self.i >= 312:
            self._twist()
        x = self.mt[self.i]
        self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & self.MASK

    def uniform01(self):
        return (self() >> 11) * 2.0 ** -53


def ref_draws(ids, probs, seed, n):
    """The documented draw: the first kept token, in order, whose cumulative probability exceeds u.
    Also returns, per draw, how far u was from the nearest boundary (rounding may flip a near one)."""
    rng = MT19937_64(seed)
    u = np.array([rng.uniform01() for _ in range(n)])
    cum = np.cumsum(probs)
    idx = np.minimum(np.searchsorted(cum, u, side="right"), len(ids) - 1)
    edges = np.concatenate(([0.0], cum))  # u lies in [edges[idx], edges[idx + 1])
    dist = np.minimum(np.abs(u - edges[idx]), np.abs(edges[idx + 1] - u))
    return ids[idx], dist


def chi_square_critical(dof, p=P_VALUE):
    """Upper-p critical value of chi-square(dof), Wilson-Hilferty (slightly conservative at small dof)."""
    z = statistics.NormalDist().inv_cdf(1 - p)
    a = 2.0 / (9.0 * dof)
    return dof * (1 - a + z * math.sqrt(a)) ** 3


def check_draws(draws, ids, probs, what):
    """(a) the support, (b) chi-square goodness of fit, (c) per-token frequencies in standard errors."""
    n = len(draws)
    outside = np.setdiff1d(np.unique(draws), ids)
    assert outside.size == 0, f"{what}: drew tokens outside the reference support: {outside[:10].tolist()}"
    counts = np.bincount(draws, minlength=N_VOCAB)[ids].astype(np.float64)
    expected = probs * n
    big = expected >= 5
    obs, exp = list(counts[big]), list(expected[big])
    if (~big).any():
        obs.append(counts[~big].sum())
        exp.append(expected[~big].sum())
    if len(exp) >= 2:
        obs, exp = np.array(obs), np.array(exp)
        stat = float(np.sum((obs - exp) ** 2 / exp))
        crit = chi_square_critical(len(exp) - 1)
        assert stat < crit, f"{what}: chi-square {stat:.1f} >= {crit:.1f} ({len(exp) - 1} dof)"
    freq = counts / n
    se = np.sqrt(probs * (1 - probs) / n)
    z = np.abs(freq - probs) / np.maximum(se, 1e-12)
    bad = np.nonzero((z > MAX_SIGMA) & (np.abs(freq - probs) > 1.0 / n))[0]
    assert bad.size == 0, (f"{what}: token {ids[bad[0]]} drawn with frequency {freq[bad[0]]:.4f}, "
                           f"reference {probs[bad[0]]:.4f} ({z[bad[0]]:.1f} standard errors)")


# --- fixtures -------------------------------------------------------------------------------

def fixture_logits():
    """48 logits with a spread of values, two exact ties (one at ranks 3-4, where top_k = 4 cuts
    between them), a -inf and a NaN."""
    rng = np.random.default_rng(20240607)
    x = rng.normal(0.0, 1.6, N_VOCAB).astype(np.float32)
    x[7] = -np.inf
    x[31] = np.nan
    order = [int(i) for i in np.argsort(-np.where(np.isnan(x), -np.inf, x), kind="stable")]
    hi, lo = max(order[3], order[4]), min(order[3], order[4])
    x[lo] = x[hi] = max(x[lo], x[hi])  # the tie at ranks 3-4 (0-based)
    x[order[12]] = x[order[11]]        # a tie inside the body of the distribution
    return x


LOGITS = fixture_logits()
TIE_LO, TIE_HI = sorted(int(i) for i in np.nonzero(LOGITS == np.sort(LOGITS[~np.isnan(LOGITS)])[-4])[0])

HISTORY = [3, 3, 9, 17, 3, 22, 9, 40, 3, 12, 9, 5, 5, 1, 17, 3]  # repeats, and more than 8 of them

CASES = [  # (temperature, top_k, top_p, min_p, penalties)
    (1.0, 0, 1.0, 0.0, {}),
    (0.5, 0, 1.0, 0.0, {}),
    (1.5, 0, 1.0, 0.0, {}),
    (1.0, 10, 1.0, 0.0, {}),
    (1.0, 4, 1.0, 0.0, {}),  # cuts through the tie: the lower id stays
    (1.0, 0, 0.8, 0.0, {}),
    (1.0, 0, 1.0, 0.1, {}),
    (0.5, 20, 0.9, 0.05, {}),
    (1.5, 15, 0.7, 0.0, {}),
    (1.5, 0, 0.95, 0.02, {}),
    (1.5, 0, 0.5, 0.3, {}),  # min-p is the shorter prefix
    (1.0, 40, 0.95, 0.05, {}),  # the defaults
    (1.0, 100, 1.0, 0.0, {}),  # k >= n_vocab: off
    (1.0, -3, 1.0, 0.0, {}),   # k < 0: off
    (1.0, 1, 1.0, 0.0, {}),    # one token
    (1.0, 0, 1.0, 1.0, {}),    # min_p 1 keeps only the most probable
    (1.0, 0, 0.9, 0.02, dict(repeat_penalty=1.3, presence_penalty=0.5, frequency_penalty=0.3, repeat_last_n=8)),
    (0.7, 12, 1.0, 0.0, dict(repeat_penalty=1.8, repeat_last_n=-1)),
    (1.2, 0, 0.85, 0.0, dict(frequency_penalty=0.6, repeat_last_n=5)),
]


def make(temperature, top_k, top_p, min_p, pen, seed=1234, n_vocab=N_VOCAB, history=()):
    s = _core.Sampler(n_vocab, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed, **pen)
    for t in history:
        s.accept(t)
    return s


def case_id(c):
    return f"T{c[0]}-k{c[1]}-p{c[2]}-minp{c[3]}" + ("-pen" + "-".join(f"{v}" for v in c[4].values()) if c[4] else "")


# --- distributions --------------------------------------------------------------------------

def test_fixture_is_not_degenerate():
    # The tie straddling top_k = 4 is real, and the lower id of it is the one ranked first.
    assert LOGITS[TIE_LO] == LOGITS[TIE_HI]
    ids, _, _ = ref_chain(LOGITS, temperature=1.0, top_k=4, top_p=1.0, min_p=0.0)
    assert TIE_LO in ids and TIE_HI not in ids


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_distribution_matches_reference(case):
    temperature, top_k, top_p, min_p, pen = case
    history = HISTORY if pen else ()
    ids, probs, margin = ref_chain(LOGITS, history, temperature=temperature, top_k=top_k, top_p=top_p,
                                   min_p=min_p, **pen)
    assert margin > 1e-4, f"fixture too close to a cut ({margin:g}): the comparison would be fragile"
    s = make(temperature, top_k, top_p, min_p, pen, history=history)
    draws = s.sample_many(LOGITS, N_DRAWS)
    assert draws.dtype == np.int32 and draws.shape == (N_DRAWS,)
    check_draws(draws, ids, probs, case_id(case))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_seeded_sequence_matches_reference_draw(case):
    temperature, top_k, top_p, min_p, pen = case
    history = HISTORY if pen else ()
    ids, probs, _ = ref_chain(LOGITS, history, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, **pen)
    seed = 977
    want, dist = ref_draws(ids, probs, seed, 400)
    got = make(temperature, top_k, top_p, min_p, pen, seed=seed, history=history).sample_many(LOGITS, 400)
    clear = dist > 1e-6  # a u this close to a boundary may fall either side in float32
    assert clear.mean() > 0.95
    bad = np.nonzero((got != want) & clear)[0]
    assert bad.size == 0, f"{case_id(case)}: draw {bad[0]} is {got[bad[0]]}, reference {want[bad[0]]}"


def test_top_k_tie_keeps_the_lower_id():
    ids, probs, _ = ref_chain(LOGITS, temperature=1.0, top_k=4, top_p=1.0, min_p=0.0)
    expected = probs[list(ids).index(TIE_LO)] * N_DRAWS
    draws = make(1.0, 4, 1.0, 0.0, {}).sample_many(LOGITS, N_DRAWS)
    assert np.count_nonzero(draws == TIE_LO) > expected / 2
    assert np.count_nonzero(draws == TIE_HI) == 0


def test_top_p_tie_keeps_the_lower_id():
    # 0.4 on id 0, ids 1 and 2 tied at 0.25, 0.1 on id 3. top_p = 0.6: 0.4 + 0.25 reaches it, so
    # exactly one of the tied pair is kept, and it must be id 1.
    logits = np.log(np.array([0.4, 0.25, 0.25, 0.1], dtype=np.float64)).astype(np.float32)
    s = _core.Sampler(4, temperature=1.0, top_k=0, top_p=0.6, min_p=0.0, seed=5)
    draws = s.sample_many(logits, 4000)
    assert set(np.unique(draws).tolist()) == {0, 1}


def test_nan_and_neg_inf_are_never_drawn():
    s = make(1.0, 0, 1.0, 0.0, {})
    x = LOGITS.copy()
    x[::3] = -np.inf
    x[1::5] = np.nan
    draws = s.sample_many(x, 5000)
    assert np.isfinite(x[draws]).all()


def test_pos_inf_logits_share_all_the_mass():
    x = np.zeros(N_VOCAB, dtype=np.float32)
    x[[5, 30]] = np.inf
    x[12] = 1e30
    draws = make(1.0, 0, 1.0, 0.0, {}).sample_many(x, 4000)
    assert set(np.unique(draws).tolist()) == {5, 30}
    assert abs(np.count_nonzero(draws == 5) / 4000 - 0.5) < 5 * math.sqrt(0.25 / 4000)
    assert make(0.0, 0, 1.0, 0.0, {}).sample(x) == 5


def test_tiny_temperature_shares_between_tied_maxima():
    x = LOGITS.copy()
    top = int(np.nanargmax(x))
    x[N_VOCAB - 1] = x[top]
    draws = make(1e-3, 0, 1.0, 0.0, {}).sample_many(x, 4000)
    assert set(np.unique(draws).tolist()) == {top, N_VOCAB - 1}


def test_float64_and_int_logits_are_converted():
    a = make(1.0, 0, 1.0, 0.0, {}, seed=3).sample_many(LOGITS, 500)
    b = make(1.0, 0, 1.0, 0.0, {}, seed=3).sample_many(LOGITS.astype(np.float64), 500)
    assert np.array_equal(a, b)
    ints = np.arange(N_VOCAB, dtype=np.int64) % 7
    assert make(0.0, 0, 1.0, 0.0, {}).sample(ints) == 6


# --- greedy ---------------------------------------------------------------------------------

def test_greedy_is_argmax_with_lowest_id_on_ties():
    s = make(0.0, 40, 0.95, 0.05, {})
    assert s.sample(LOGITS) == ref_greedy(LOGITS)[0]
    x = np.zeros(N_VOCAB, dtype=np.float32)
    x[[9, 3, 40]] = 2.5
    assert s.sample(x) == 3
    x[:] = -7.0
    assert s.sample(x) == 0
    x[0] = np.nan
    assert s.sample(x) == 1
    x = np.full(N_VOCAB, -np.inf, dtype=np.float32)
    x[44] = -1e30
    assert s.sample(x) == 44


@pytest.mark.parametrize("n_vocab", [1, 3, 15, 16, 17, 31, 33, 1005])
def test_greedy_finds_the_first_max_at_every_lane_and_tail_position(n_vocab):
    # the argmax runs 16 lanes at a time with a tail: a max (or a tie, or NaN) at any position,
    # lane and block edges included, must come out as a plain first-max scan says
    rng = np.random.default_rng(n_vocab)
    s = _core.Sampler(n_vocab, temperature=0.0)
    for pos in sorted(p for p in {0, 1, n_vocab // 2, n_vocab - 16, n_vocab - 2, n_vocab - 1} if 0 <= p < n_vocab):
        x = rng.normal(size=n_vocab).astype(np.float32)
        x[rng.random(n_vocab) < 0.1] = np.nan
        x[pos] = 9.0
        assert s.sample(x) == pos
        if pos + 1 < n_vocab:
            x[pos + 1:] = np.where(rng.random(n_vocab - pos - 1) < 0.5, 9.0, x[pos + 1:])  # later ties lose
            assert s.sample(x) == pos
        x[:pos] = np.nan
        assert s.sample(x) == pos
    x = np.full(n_vocab, np.nan, dtype=np.float32)
    x[-1] = -np.inf
    with pytest.raises(ValueError, match="NaN or -inf"):
        s.sample(x)


def test_greedy_ignores_the_filters():
    # top_k / top_p / min_p do not apply at temperature 0: the argmax is always the pick.
    rng = np.random.default_rng(11)
    for _ in range(20):
        x = rng.normal(size=N_VOCAB).astype(np.float32)
        assert make(0.0, 1, 0.1, 0.9, {}).sample(x) == int(np.argmax(x))


# --- penalties ------------------------------------------------------------------------------

def probe_logits():
    x = np.zeros(8, dtype=np.float32)
    x[0], x[1] = 5.0, 4.0
    return x


def greedy(n_vocab=8, **pen):
    return _core.Sampler(n_vocab, temperature=0.0, **pen)


def test_repeat_penalty_sign_rule():
    x = np.full(8, -10.0, dtype=np.float32)
    x[6], x[7] = -4.5, -4.0
    s = greedy(repeat_penalty=1.2)
    assert s.sample(x) == 7
    s.accept(7)
    assert s.sample(x) == 6  # -4 x 1.2 = -4.8 < -4.5 (dividing would have raised it to -3.33)
    y = probe_logits()
    s = greedy(repeat_penalty=1.2)
    s.accept(0)
    assert s.sample(y) == 0  # 5 / 1.2 = 4.17 > 4 (multiplying would have given 6)
    s = greedy(repeat_penalty=1.3)
    s.accept(0)
    assert s.sample(y) == 1  # 5 / 1.3 = 3.85 < 4


def test_frequency_penalty_counts_occurrences_in_the_window():
    x = probe_logits()
    x[1] = 2.5  # token 0 wins while 5 - count > 2.5, i.e. count <= 2
    s = greedy(frequency_penalty=1.0, repeat_last_n=4)
    picks = []
    for t in [0, 0, 0, 3, 3, 0, 4, 4, 4]:
        s.accept(t)
        picks.append(s.sample(x))
    # windows: [0] [0 0] [0 0 0] [0 0 0 3] [0 0 3 3] [0 3 3 0] [3 3 0 4] [3 0 4 4] [0 4 4 4]
    assert picks == [0, 0, 1, 1, 0, 0, 0, 0, 0]


def test_presence_penalty_is_applied_once():
    x = probe_logits()
    x[1] = 2.5
    s = greedy(presence_penalty=2.0, repeat_last_n=-1)
    s.accept(0)
    assert s.sample(x) == 0  # 5 - 2 = 3 > 2.5
    for _ in range(10):
        s.accept(0)
    assert s.sample(x) == 0  # still 3: not scaled by the count
    s = greedy(presence_penalty=2.6, repeat_last_n=-1)
    s.accept(0)
    assert s.sample(x) == 1


def test_window_evicts_the_oldest_token_across_ring_wraps():
    x = probe_logits()
    s = greedy(repeat_penalty=2.0, repeat_last_n=3)
    want = []
    got = []
    seq = [0, 2, 3, 4, 0, 5, 6, 7, 0, 0, 2, 3, 4, 5]
    for i, t in enumerate(seq):
        s.accept(t)
        got.append(s.sample(x))
        want.append(1 if 0 in seq[max(0, i - 2):i + 1] else 0)
    assert got == want
    assert 0 in got and 1 in got


def test_unbounded_window_remembers_everything():
    x = probe_logits()
    x[1] = 2.5
    rng = np.random.default_rng(2)
    others = rng.integers(2, 8, 1000).tolist()
    s_all = greedy(frequency_penalty=1.0, repeat_last_n=-1)
    s_64 = greedy(frequency_penalty=1.0, repeat_last_n=64)
    for s in (s_all, s_64):
        for t in [0, 0, 0] + others:
            s.accept(t)
    assert s_all.sample(x) == 1  # token 0 still counted 3 times
    assert s_64.sample(x) == 0   # evicted long ago


def test_zero_window_disables_penalties():
    x = probe_logits()
    s = greedy(repeat_penalty=5.0, presence_penalty=2.0, frequency_penalty=2.0, repeat_last_n=0)
    for _ in range(100):
        s.accept(0)
    assert s.sample(x) == 0


PENALTY_CONFIGS = [
    dict(repeat_penalty=1.3, repeat_last_n=5),
    dict(presence_penalty=0.4, repeat_last_n=17),
    dict(frequency_penalty=0.6, repeat_last_n=1),
    dict(repeat_penalty=1.2, presence_penalty=0.3, frequency_penalty=0.1, repeat_last_n=9),
    dict(repeat_penalty=1.2, presence_penalty=-0.2, frequency_penalty=0.25, repeat_last_n=-1),
    dict(repeat_penalty=0.5, frequency_penalty=-0.1, repeat_last_n=3),  # penalties that favour repeats
    dict(repeat_penalty=3.0, presence_penalty=1.0, frequency_penalty=1.0, repeat_last_n=0),
]


@pytest.mark.parametrize("index", range(len(PENALTY_CONFIGS)),
                         ids=["-".join(f"{k}={v}" for k, v in p.items()) for p in PENALTY_CONFIGS])
def test_greedy_under_penalties_matches_reference(index):
    pen = PENALTY_CONFIGS[index]
    rng = np.random.default_rng(1000 + index)
    n_vocab = 32
    x = rng.normal(0.0, 0.5, n_vocab).astype(np.float32)
    x[:10] += 1.0  # the often-accepted ids 0-9 lead
    if index % 2:
        x -= x.max() + 0.5  # every logit negative: the repeat penalty multiplies
    s = greedy(n_vocab, **pen)
    history, compared, changed = [], 0, 0
    plain = int(np.argmax(x))
    for _ in range(300):
        t = int(rng.integers(0, 10)) if rng.random() < 0.8 else int(rng.integers(0, n_vocab))
        s.accept(t)
        history.append(t)
        want, gap = ref_greedy(x, history, **pen)
        got = s.sample(x)
        if gap > 1e-4:
            compared += 1
            assert got == want, f"after {len(history)} accepts (last {history[-12:]}): got {got}, want {want}"
        changed += got != plain
    assert compared > 250
    if pen["repeat_last_n"] == 0:
        assert changed == 0
    else:
        assert changed > 30  # the penalties did move the pick


# --- seeds ----------------------------------------------------------------------------------

def test_uniform_generator_is_mt19937_64():
    rng = MT19937_64(5489)
    for _ in range(9999):
        rng()
    assert rng() == 9981545732273789042  # the C++ standard's check value for mt19937_64


def test_same_seed_same_sequence_different_seed_different_sequence():
    a = make(1.0, 0, 1.0, 0.0, {}, seed=42).sample_many(LOGITS, 2000)
    b = make(1.0, 0, 1.0, 0.0, {}, seed=42).sample_many(LOGITS, 2000)
    c = make(1.0, 0, 1.0, 0.0, {}, seed=43).sample_many(LOGITS, 2000)
    assert np.array_equal(a, b)
    assert np.count_nonzero(a != c) > 1000


def test_sample_and_sample_many_agree():
    s1 = make(1.0, 20, 0.9, 0.01, {}, seed=8)
    s2 = make(1.0, 20, 0.9, 0.01, {}, seed=8)
    assert s1.sample_many(LOGITS, 300).tolist() == [s2.sample(LOGITS) for _ in range(300)]
    assert s1.sample_many(LOGITS, 0).shape == (0,)


def test_reset_restarts_the_sequence_and_clears_the_history():
    s = make(1.0, 0, 1.0, 0.0, dict(presence_penalty=30.0, repeat_last_n=-1), seed=99)
    first = s.sample_many(LOGITS, 500)
    top = int(np.nanargmax(LOGITS))
    s.accept(top)
    assert top not in s.sample_many(LOGITS, 500)
    s.reset(99)
    assert np.array_equal(s.sample_many(LOGITS, 500), first)
    s.reset(100)
    assert not np.array_equal(s.sample_many(LOGITS, 500), first)


# --- a large vocabulary ---------------------------------------------------------------------

BIG = 262144
BIG_CASES = [  # (temperature, top_k, top_p, min_p, draws)
    (1.0, 0, 0.9, 0.0, 600),
    (1.0, 0, 0.9, 0.002, 600),
    (0.8, 0, 1.0, 0.0, 300),  # nothing cut: the draw alone decides how much gets sorted
    (1.0, 40, 0.95, 0.05, 600),
    (1.0, 50000, 0.99, 0.0, 300),
]


@pytest.fixture(scope="module")
def big_logits():
    return np.random.default_rng(262144).normal(0.0, 3.0, BIG).astype(np.float32)


@pytest.mark.parametrize("case", BIG_CASES, ids=lambda c: f"T{c[0]}-k{c[1]}-p{c[2]}-minp{c[3]}")
def test_large_vocabulary_matches_reference(big_logits, case):
    temperature, top_k, top_p, min_p, n = case
    ids, probs, margin = ref_chain(big_logits, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    assert margin > 1e-7, f"fixture too close to a cut ({margin:g})"
    assert 10 <= len(ids) < BIG or top_p == 1.0
    s = _core.Sampler(BIG, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=31)
    draws = s.sample_many(big_logits, n)
    outside = np.setdiff1d(np.unique(draws), ids)
    assert outside.size == 0, f"drew {outside.size} tokens outside the reference support ({len(ids)} tokens)"
    want, dist = ref_draws(ids, probs, 31, n)
    # With 262144 logits many are a few ulps apart; their float32 probabilities can tie (then the
    # lower id goes first) where float64 still orders them, so a draw may land on a neighbour of
    # the reference's token whose probability agrees with it to float32 precision.
    p_of = dict(zip(ids.tolist(), probs.tolist()))
    near = np.array([abs(p_of[g] - p_of[w]) <= 1e-5 * p_of[w] for g, w in zip(draws.tolist(), want.tolist())])
    bad = np.nonzero((draws != want) & (dist > 1e-6) & ~near)[0]
    assert bad.size == 0, f"draw {bad[0]} is {draws[bad[0]]}, reference {want[bad[0]]}"
    assert np.count_nonzero(draws == want) > 0.9 * n


@pytest.mark.parametrize("case", range(6))
def test_small_top_k_fast_path_draws_as_the_full_pass(case):
    # With k x 64 <= n_vocab the sampler finds the k best before exponentiating (top_k_first);
    # below that it exponentiates every token. Put the only contenders in the first 100 ids of a
    # 4096-token row (the rest below them all, yet with p > 0): the top-k set, its p bits, its
    # mass and so every seeded draw must equal those of a sampler over just those 100 ids.
    rng = np.random.default_rng(case)
    T, k, top_p, min_p = [(1.0, 40, 1.0, 0.0), (0.7, 40, 0.95, 0.05), (1.5, 10, 0.9, 0.0),
                          (0.3, 30, 1.0, 0.02), (1.0, 1, 1.0, 0.0), (2.0, 25, 0.5, 0.0)][case]
    head = rng.normal(0.0, 2.0, 100).astype(np.float32)
    if case % 2:
        head = np.round(head * 4) / 4  # exact ties in p, broken by the lower id
    head[rng.integers(0, 100, 5)] = np.nan
    row = np.concatenate([head, (np.nanmin(head) - 1 - rng.random(3996) * 5 * T).astype(np.float32)])
    full = _core.Sampler(4096, temperature=T, top_k=k, top_p=top_p, min_p=min_p, seed=77 + case)
    part = _core.Sampler(100, temperature=T, top_k=k, top_p=top_p, min_p=min_p, seed=77 + case)
    assert np.array_equal(full.sample_many(row, 3000), part.sample_many(head, 3000))


# --- bad input ------------------------------------------------------------------------------

BAD_FIELDS = [
    ("temperature", -0.1), ("temperature", math.nan), ("temperature", math.inf),
    ("top_p", 0.0), ("top_p", 1.5), ("top_p", -0.2), ("top_p", math.nan),
    ("min_p", -0.01), ("min_p", 1.01), ("min_p", math.nan),
    ("repeat_penalty", 0.0), ("repeat_penalty", -1.0), ("repeat_penalty", math.nan), ("repeat_penalty", math.inf),
    ("repeat_last_n", -2),
    ("presence_penalty", math.nan), ("presence_penalty", math.inf),
    ("frequency_penalty", math.nan), ("frequency_penalty", -math.inf),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_bad_field_raises_value_error_naming_it(field, value):
    with pytest.raises(ValueError, match=field):
        _core.Sampler(N_VOCAB, **{field: value})


def test_bad_field_message_shows_the_range():
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        _core.Sampler(N_VOCAB, top_p=1.5)


@pytest.mark.parametrize("n_vocab", [0, -5])
def test_bad_vocabulary_size(n_vocab):
    with pytest.raises(ValueError, match="n_vocab"):
        _core.Sampler(n_vocab)


@pytest.mark.parametrize("bad", [
    np.zeros(N_VOCAB - 1, dtype=np.float32),
    np.zeros(N_VOCAB + 1, dtype=np.float32),
    np.zeros((2, N_VOCAB), dtype=np.float32),
    np.zeros((N_VOCAB, 1), dtype=np.float32),
    np.float32(1.0),
    np.array(["x"] * N_VOCAB),
    np.zeros(N_VOCAB, dtype=np.complex64),
    "not logits",
], ids=["short", "long", "2d", "column", "scalar", "strings", "complex", "str"])
def test_bad_logits_raise_value_error(bad):
    s = _core.Sampler(N_VOCAB)
    with pytest.raises(ValueError, match="logits"):
        s.sample(bad)
    with pytest.raises(ValueError, match="logits"):
        s.sample_many(bad, 3)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("fill", ["-inf", "nan", "mixed"])
def test_no_possible_token_raises(temperature, fill):
    x = np.full(N_VOCAB, -np.inf if fill == "-inf" else np.nan, dtype=np.float32)
    if fill == "mixed":
        x[::2] = -np.inf
    s = _core.Sampler(N_VOCAB, temperature=temperature)
    with pytest.raises(ValueError, match="NaN or -inf"):
        s.sample(x)
    with pytest.raises(ValueError, match="NaN or -inf"):
        s.sample_many(x, 2)


@pytest.mark.parametrize("window", [64, 0, -1])
def test_accept_out_of_range_raises(window):
    s = _core.Sampler(N_VOCAB, repeat_last_n=window)
    for bad in (-1, N_VOCAB, N_VOCAB + 1000):
        with pytest.raises(ValueError, match="out of range"):
            s.accept(bad)
    s.accept(0)
    s.accept(N_VOCAB - 1)


def test_sample_many_negative_count_raises():
    with pytest.raises(ValueError, match="n must be"):
        _core.Sampler(N_VOCAB).sample_many(LOGITS, -1)
