/*
 * context_check.c — the checks of context options and batches (../include/hearth_context_check.h),
 * compiled into the CPU library and the CUDA one, so a batch either backend refuses, the other refuses
 * with the same message.
 */
#include <math.h>

#include "../include/hearth_context_check.h"
#include "../include/hearth_fail.h"

int32_t hearth_check_context_new(int32_t have_model, int32_t finished, const hearth_context_options* o, char* err,
                                 size_t err_len) {
  if (!have_model || !o || !finished)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "context_new: %s",
                       !have_model || !o ? "model or options is NULL" : "model is not finished");
  if (o->n_threads < 1 || o->n_threads > 1024 || o->kv_block_size < 1 || o->kv_block_size > 4096 ||
      o->kv_num_blocks < 1 || o->max_batch_tokens < 1 || o->max_batch_seqs < 1 || o->max_blocks_per_seq < 1 ||
      o->max_batch_seqs > o->max_batch_tokens)
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "context options out of range (threads %d, kv_block_size %d, kv_num_blocks %d, "
                       "max_batch_tokens %d, max_batch_seqs %d, max_blocks_per_seq %d)",
                       o->n_threads, o->kv_block_size, o->kv_num_blocks, o->max_batch_tokens, o->max_batch_seqs,
                       o->max_blocks_per_seq);
  if (o->kv_dtype != HEARTH_DTYPE_F32 && o->kv_dtype != HEARTH_DTYPE_F16)
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "context options: kv_dtype %d is neither float32 (%d) nor float16 (%d)", o->kv_dtype,
                       HEARTH_DTYPE_F32, HEARTH_DTYPE_F16);
  return HEARTH_OK;
}

#define SLICE_OK(start, len, total) ((start) >= 0 && (len) >= 0 && (int64_t)(start) + (len) <= (int64_t)(total))

int32_t hearth_check_batch(const hearth_model_config* c, const hearth_context_options* o, const hearth_batch* b,
                           char* err, size_t err_len) {
  if (b->n_tokens < 1 || b->n_tokens > o->max_batch_tokens)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: n_tokens %d not in [1, %d]", b->n_tokens,
                       o->max_batch_tokens);
  if (b->n_seqs < 1 || b->n_seqs > o->max_batch_seqs)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: n_seqs %d not in [1, %d]", b->n_seqs, o->max_batch_seqs);
  if (b->logits_mode < HEARTH_LOGITS_NONE || b->logits_mode > HEARTH_LOGITS_ALL)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: unknown logits_mode %d", b->logits_mode);
  if (!b->tokens || !b->positions || !b->seq_start || !b->block_tables || !b->sample || !b->sampling ||
      !b->out_tokens || (b->logits_mode != HEARTH_LOGITS_NONE && !b->out_logits))
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: a required array is NULL");
  if ((b->n_history > 0 && !b->history) || (b->n_bias > 0 && (!b->bias_ids || !b->bias_values)) ||
      (b->n_stop_ids > 0 && !b->stop_ids) || b->n_history < 0 || b->n_bias < 0 || b->n_stop_ids < 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: history, bias or stop_ids array missing");
  if (b->seq_start[0] != 0 || b->seq_start[b->n_seqs] != b->n_tokens)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: seq_start must run from 0 to n_tokens (%d)",
                       b->n_tokens);
  const int64_t capacity = (int64_t)o->max_blocks_per_seq * o->kv_block_size;
  for (int32_t s = 0; s < b->n_seqs; s++) {
    const int32_t start = b->seq_start[s], end = b->seq_start[s + 1];
    if (end <= start)
      return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: sequence %d has no tokens", s);
    const int32_t first = b->positions[start];
    for (int32_t t = start; t < end; t++) {
      if (b->tokens[t] < 0 || b->tokens[t] >= c->vocab_size)
        return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "batch: token id %d out of range [0, %d)", b->tokens[t],
                           c->vocab_size);
      if (b->positions[t] != first + (t - start))
        return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: positions of sequence %d are not consecutive", s);
    }
    const int32_t last = b->positions[end - 1];
    if (first < 0 || last >= c->max_seq_len || last >= capacity)
      return hearth_fail(err, err_len, HEARTH_E_BOUNDS,
                         "batch: sequence %d reaches position %d, past the context (%d) or its block table (%lld)", s,
                         last, c->max_seq_len, (long long)capacity);
    const int32_t* table = b->block_tables + (size_t)s * o->max_blocks_per_seq;
    for (int32_t i = 0; i <= last / o->kv_block_size; i++)
      if (table[i] < 0 || table[i] >= o->kv_num_blocks)
        return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "batch: sequence %d block %d is %d, not in [0, %d)", s, i,
                           table[i], o->kv_num_blocks);
    const hearth_sampling* sp = &b->sampling[s];
    if (b->sample[s]) {
      if (!SLICE_OK(sp->history_start, sp->history_len, b->n_history) || sp->prompt_len < 0 ||
          !SLICE_OK(sp->bias_start, sp->bias_len, b->n_bias) ||
          !SLICE_OK(sp->stop_ids_start, sp->stop_ids_len, b->n_stop_ids))
        return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "batch: sampling slices of sequence %d run past their arrays",
                           s);
      if (isnan(sp->temperature) || isnan(sp->top_p) || isnan(sp->min_p) || sp->top_p < 0 || sp->top_p > 1 ||
          sp->min_p < 0 || sp->min_p > 1 || sp->repetition_penalty <= 0 || isnan(sp->repetition_penalty) ||
          sp->no_repeat_ngram_size < 0 || sp->n_top_logprobs < 0 || sp->n_top_logprobs > HEARTH_MAX_TOP_LOGPROBS)
        return hearth_fail(err, err_len, HEARTH_E_INVALID, "batch: sampling parameters of sequence %d out of range", s);
    }
  }
  return HEARTH_OK;
}
