/*
 * sampler.c — picking the next token from a row of logits, in the order hearth.h documents:
 * bias and bans, minimum length, repetition / presence / frequency penalties, no-repeat n-grams,
 * temperature, top-k, top-p, min-p, draw. Log-probabilities reported back are those of the raw model
 * distribution (log-softmax of the unprocessed logits), as OpenAI reports them.
 *
 * The draw uses hearth_uniform(seed, position): a pure function of the request's seed and the position
 * of the token being drawn, so a seeded request gives the same tokens whatever else shares the batch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* splitmix64: a well-mixed 64-bit permutation; two rounds make the counter-based generator. */
static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double hearth_uniform(uint64_t seed, uint64_t position) {
  uint64_t r = mix64(seed ^ mix64(position));
  return (double)(r >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

/* Candidate order: higher value first, then lower id, so ties never depend on the sort. */
static int before(const float* v, int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); }

/* Moves the k best ids (by before()) of ids[0..n) to the front, in order. Quickselect, then sort. */
static void select_top(const float* v, int32_t* ids, int32_t n, int32_t k) {
  int32_t lo = 0, hi = n - 1;
  while (lo < hi) { /* partition until position k - 1 holds the k-th best */
    int32_t pivot = ids[lo + (hi - lo) / 2], i = lo, j = hi;
    while (i <= j) {
      while (before(v, ids[i], pivot)) i++;
      while (before(v, pivot, ids[j])) j--;
      if (i <= j) {
        int32_t tmp = ids[i];
        ids[i++] = ids[j];
        ids[j--] = tmp;
      }
    }
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else break;
  }
  for (int32_t i = 1; i < k; i++) { /* insertion sort of the front k (k is small, or this is rare) */
    int32_t id = ids[i], j = i - 1;
    while (j >= 0 && before(v, id, ids[j])) ids[j + 1] = ids[j], j--;
    ids[j + 1] = id;
  }
}

/* Raw log-probabilities: the sampled token's and the top n. */
static void report_logprobs(const float* raw, int32_t vocab, int32_t token, int32_t n_top, float* out_logprob,
                            int32_t* top_ids, float* top_logprobs, hearth_sampler_scratch* sc) {
  float mx = -INFINITY;
  for (int32_t i = 0; i < vocab; i++) mx = raw[i] > mx ? raw[i] : mx;
  double sum = 0;
  for (int32_t i = 0; i < vocab; i++) sum += exp((double)raw[i] - mx);
  const float log_z = mx + (float)log(sum);
  if (out_logprob) *out_logprob = raw[token] - log_z;
  if (top_ids && top_logprobs) {
    if (n_top > HEARTH_MAX_TOP_LOGPROBS) n_top = HEARTH_MAX_TOP_LOGPROBS;
    if (n_top > vocab) n_top = vocab;
    for (int32_t i = 0; i < vocab; i++) sc->ids[i] = i;
    if (n_top > 0) select_top(raw, sc->ids, vocab, n_top);
    for (int32_t i = 0; i < HEARTH_MAX_TOP_LOGPROBS; i++) {
      top_ids[i] = i < n_top ? sc->ids[i] : -1;
      top_logprobs[i] = i < n_top ? raw[sc->ids[i]] - log_z : -INFINITY;
    }
  }
}

/* The logit processors that apply to a sequence now, decided once: process_logits runs these, and a
   greedy draw with none of them takes the raw logits' argmax without copying them. */
typedef struct {
  const int32_t* hist; /* (n_hist) the sequence's tokens, prompt first; NULL without history */
  int32_t n_hist, n_prompt;
  int bias, ban_stops, repetition, presence, ngram;
} logit_processors;

static logit_processors processors_of(const hearth_sampling* s, const hearth_batch* b) {
  logit_processors p;
  p.hist = b->history ? b->history + s->history_start : NULL;
  p.n_hist = p.hist ? s->history_len : 0;
  p.n_prompt = s->prompt_len < p.n_hist ? s->prompt_len : p.n_hist;
  p.bias = s->bias_len > 0;
  p.ban_stops = p.n_hist - p.n_prompt < s->min_tokens && s->stop_ids_len > 0; /* min_tokens not reached */
  p.repetition = s->repetition_penalty != 1.0f && s->repetition_penalty > 0;
  p.presence = s->presence_penalty != 0 || s->frequency_penalty != 0;
  p.ngram = s->no_repeat_ngram_size > 0 && p.n_hist >= s->no_repeat_ngram_size - 1;
  return p;
}

static int any_processor(const logit_processors* p) {
  return p->bias || p->ban_stops || p->repetition || p->presence || p->ngram;
}

/* Applies the logit processors p of s to w (vocab) in place. */
static void process_logits(float* w, int32_t vocab, const hearth_sampling* s, const hearth_batch* b,
                           const logit_processors* p, hearth_sampler_scratch* sc) {
  const int32_t* hist = p->hist;
  const int32_t n_hist = p->n_hist, n_prompt = p->n_prompt;
  if (p->bias)
    for (int32_t i = 0; i < s->bias_len; i++) {
      int32_t id = b->bias_ids[s->bias_start + i];
      if (id >= 0 && id < vocab) w[id] += b->bias_values[s->bias_start + i];
    }
  if (p->ban_stops)
    for (int32_t i = 0; i < s->stop_ids_len; i++) {
      int32_t id = b->stop_ids[s->stop_ids_start + i];
      if (id >= 0 && id < vocab) w[id] = -INFINITY;
    }
  if (p->repetition) {
    /* Each distinct id once: stamp marks ids already penalised for this sequence. */
    if (++sc->epoch == 0) memset(sc->stamp, 0, sizeof(uint32_t) * (size_t)vocab), sc->epoch = 1;
    for (int32_t i = 0; i < n_hist; i++) {
      int32_t id = hist[i];
      if (id < 0 || id >= vocab || sc->stamp[id] == sc->epoch) continue;
      sc->stamp[id] = sc->epoch;
      w[id] = w[id] > 0 ? w[id] / s->repetition_penalty : w[id] * s->repetition_penalty;
    }
  }
  if (p->presence) {
    for (int32_t i = n_prompt; i < n_hist; i++)
      if (hist[i] >= 0 && hist[i] < vocab) sc->counts[hist[i]]++;
    for (int32_t i = n_prompt; i < n_hist; i++) {
      int32_t id = hist[i];
      if (id < 0 || id >= vocab || sc->counts[id] == 0) continue;
      w[id] -= s->frequency_penalty * (float)sc->counts[id] + s->presence_penalty;
      sc->counts[id] = 0; /* applied once per id, and the array is clean again for the next sequence */
    }
  }
  if (p->ngram) {
    const int32_t n = s->no_repeat_ngram_size;
    /* Any earlier n-gram whose first n-1 tokens equal the last n-1 tokens bans its n-th token. */
    const int32_t* tail = hist + n_hist - (n - 1);
    for (int32_t i = 0; i + n <= n_hist; i++) {
      if (n > 1 && memcmp(hist + i, tail, sizeof(int32_t) * (size_t)(n - 1)) != 0) continue;
      int32_t id = hist[i + n - 1];
      if (id >= 0 && id < vocab) w[id] = -INFINITY;
    }
  }
}

/* Draws from softmax(w / temperature) restricted by top-k, top-p and min-p. */
static int32_t draw(float* w, int32_t vocab, const hearth_sampling* s, uint64_t position, hearth_sampler_scratch* sc,
                    const hearth_cpu_ops* ops) {
  const int32_t best = ops->argmax(w, vocab);
  if (w[best] == -INFINITY) return best; /* everything banned: nothing sensible to draw */
  const float inv_t = 1.0f / s->temperature, mx = w[best];
  /* Unnormalised probabilities; the best token has probability weight 1 (exp(0) is exactly 1 everywhere). */
  const double total = ops->exp_sum(w, vocab, mx, inv_t);
  const int limit_k = s->top_k > 0 && s->top_k < vocab, limit_p = s->top_p > 0 && s->top_p < 1;
  if (!limit_k && !limit_p && !(s->min_p > 0)) {
    /* The whole vocabulary: the running sums are stored as they are added, so the draw is a binary
       search instead of a second pass of dependent additions over it (the same sums in the same order,
       so the same token; this pass was most of a sampled token's time). */
    double* cum = sc->cum, mass = 0;
    for (int32_t i = 0; i < vocab; i++) cum[i] = mass += w[i];
    const double u = hearth_uniform(s->seed, position) * mass;
    int32_t lo = 0, hi = vocab - 1; /* the first id whose running sum passes u; the last if none does */
    while (lo < hi) {
      const int32_t mid = lo + (hi - lo) / 2;
      if (u < cum[mid]) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  int32_t* ids = sc->ids;
  int32_t n = 0;
  if (limit_k || limit_p) {
    for (int32_t i = 0; i < vocab; i++) ids[i] = i;
    /* Sort only as far as needed: top-k needs k; top-p grows the sorted front until it holds top_p. */
    int32_t k = limit_k ? s->top_k : (vocab < 64 ? vocab : 64);
    double kept = 0;
    for (;;) {
      select_top(w, ids, vocab, k);
      kept = 0;
      for (int32_t i = 0; i < k; i++) kept += w[ids[i]];
      if (!limit_p || limit_k || kept >= s->top_p * total || k == vocab) break;
      k = k > vocab / 4 ? vocab : k * 4;
    }
    n = k;
    if (limit_p) { /* smallest prefix whose share of the (top-k) mass reaches top_p: after top-k the
                      distribution is renormalised over the k kept (as transformers chains them); without
                      it the share is of the whole vocabulary, not of the sorted window */
      double cum = 0, target = s->top_p * (limit_k ? kept : total);
      for (int32_t i = 0; i < k; i++) {
        cum += w[ids[i]];
        if (cum >= target) {
          n = i + 1;
          break;
        }
      }
    }
  } else {
    for (int32_t i = 0; i < vocab; i++) ids[i] = i;
    n = vocab;
  }
  if (s->min_p > 0) { /* drop what is less likely than min_p times the most likely (weight 1) */
    int32_t kept_n = 0;
    for (int32_t i = 0; i < n; i++)
      if (w[ids[i]] >= s->min_p) ids[kept_n++] = ids[i];
    n = kept_n;
  }
  double mass = 0;
  for (int32_t i = 0; i < n; i++) mass += w[ids[i]];
  double u = hearth_uniform(s->seed, position) * mass, cum = 0;
  for (int32_t i = 0; i < n; i++) {
    cum += w[ids[i]];
    if (u < cum) return ids[i];
  }
  return ids[n - 1];
}

typedef struct {
  hearth_context* ctx;
  const hearth_batch* b;
  const float* const* seq_logits; /* (n_seqs) row of raw logits per sequence, NULL if not sampled */
} sample_job;

static void sample_task(void* arg, int32_t seq, int32_t thread) {
  sample_job* j = (sample_job*)arg;
  const hearth_batch* b = j->b;
  const float* raw = j->seq_logits[seq];
  if (!raw) {
    b->out_tokens[seq] = -1;
    return;
  }
  const int32_t vocab = j->ctx->model->cfg.vocab_size;
  const hearth_sampling* s = &b->sampling[seq];
  hearth_sampler_scratch* sc = &j->ctx->samplers[thread];
  /* The position the new token will take: one past the sequence's last position in this step. */
  const uint64_t position = (uint64_t)b->positions[b->seq_start[seq + 1] - 1] + 1;
  const logit_processors processors = processors_of(s, b);
  int32_t token;
  if (s->temperature <= 0 && !any_processor(&processors)) {
    token = j->ctx->ops->argmax(raw, vocab); /* greedy on the raw logits: nothing to copy them for */
  } else {
    memcpy(sc->work, raw, sizeof(float) * (size_t)vocab);
    process_logits(sc->work, vocab, s, b, &processors, sc);
    token = s->temperature <= 0 ? j->ctx->ops->argmax(sc->work, vocab) : draw(sc->work, vocab, s, position, sc, j->ctx->ops);
  }
  b->out_tokens[seq] = token;
  if (s->want_logprob || (s->n_top_logprobs > 0 && b->out_top_ids && b->out_top_logprobs))
    report_logprobs(raw, vocab, token, s->n_top_logprobs, b->out_logprobs ? &b->out_logprobs[seq] : NULL,
                    b->out_top_ids ? b->out_top_ids + (size_t)seq * HEARTH_MAX_TOP_LOGPROBS : NULL,
                    b->out_top_logprobs ? b->out_top_logprobs + (size_t)seq * HEARTH_MAX_TOP_LOGPROBS : NULL, sc);
}

void hearth_sample_batch(hearth_context* ctx, const hearth_batch* b, const float* const* seq_logits) {
  sample_job j = {.ctx = ctx, .b = b, .seq_logits = seq_logits};
  hearth_pool_run(ctx->pool, sample_task, &j, b->n_seqs);
}
