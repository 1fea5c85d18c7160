"""In-graph decoding of the next basket: greedy and beam search, each a tf.while_loop that ends
when every basket of the batch has ended (or after ``max_items`` steps).

Both never repeat an item (emitted classes are masked), never emit OOV (class 1), emit at least one
item (end-of-basket is masked at the first step), and stop at end-of-basket or after ``max_items``.

When the basket ends: with ``end_threshold`` 0, when end-of-basket is the single most likely class
(plain argmax). That ends baskets early: the probability of going on is spread over thousands of
items, so end-of-basket often beats the best single item while the model still thinks the basket
more likely to go on than not (LENS1000 + repeat path on Ta-Feng: 1.4 items decoded per basket,
6.8 in the targets). With ``end_threshold`` t > 0, end-of-basket may be chosen only at a step where
its own probability reaches t (0.5: "the basket more likely ends here than goes on"); below t the
best item is taken. The ranking does not depend on t beyond the length of the decoded path.

Output (dict of tensors, B customers, D' = max_items, K = ranking_size):
  items       int32   [B, D']  vocabulary ids in decoding order, 0 after the basket ended
  scores      float32 [B, D']  p(item | previous items, funnel) at the step it was emitted
  quantities  float32 [B, D']  predicted units (expm1 of the quantity head), 0 after the end
  sizes       int32   [B]      items in the basket
  ranking     int32   [B, K]   vocabulary ids, best first
  ranking_scores float32 [B, K]

The ranking: for every item, the highest probability the decoder gave it at any step of the decoded
path (steps before the basket ended; the item is not masked at the step it is emitted). Items of the
basket therefore rank high, followed by the runners-up of every step.

With the NSD's repeat path, ``history`` [B, C] (``LensModel.repeat_history``) is required and every
step, the ranking included, uses the mixture distribution g p_gen + (1 - g) p_repeat, renormalized
over the classes still allowed at that step.
"""

import tensorflow as tf

__all__ = ["beam_search", "decode", "decode_as_configured", "greedy_decode"]

_NEG = -1e9


def _step_mask(num_classes: int, step):
    """[C] additive mask: OOV always, end-of-basket at the first step (``step`` a scalar tensor)."""
    oov = tf.one_hot(1, num_classes, on_value=_NEG, off_value=0.0)
    end = tf.one_hot(0, num_classes, on_value=_NEG, off_value=0.0)
    return oov + tf.where(tf.equal(step, 0), end, tf.zeros_like(end))


def _repeat_inputs(model, history):
    """(history, class embeddings) for NextSessionDecoder.step; (None, None) without repeat path."""
    if model.nsd.repeat is None:
        return None, None
    if history is None:
        raise ValueError("this model has a repeat path: pass history=model.repeat_history(...)")
    return history, model.class_embeddings()


def _put(columns, step, value, max_items: int):
    """columns [..., D'] with ``value`` [...] written at position ``step`` (zeros elsewhere)."""
    column = tf.one_hot(step, max_items, dtype=columns.dtype)
    return columns + value[..., None] * column


def _until_all_ended(body, loop_vars, max_items: int):
    """Run ``body`` while a basket is still open, at most ``max_items`` steps; loop_vars[0] is the
    step and loop_vars[1] the [B] or [B, W] open flags. Ended baskets only add zeros, so stopping
    when none is open gives the outputs of running all ``max_items`` steps."""
    return tf.while_loop(
        lambda step, active, *_: tf.reduce_any(active),
        body,
        loop_vars,
        maximum_iterations=max_items,
    )


def _choosable(scores, probs, end_threshold: float, blocked: float):
    """scores [..., C] of the next token (probabilities or log-probabilities) with end-of-basket
    set to ``blocked`` where its probability (``probs``) is under ``end_threshold``."""
    if end_threshold <= 0:
        return scores
    end = tf.where(probs[..., :1] >= end_threshold, scores[..., :1], blocked)
    return tf.concat([end, scores[..., 1:]], axis=-1)


def greedy_decode(
    model, encoding, max_items: int, ranking_size: int, history=None, end_threshold: float = 0.0
) -> dict:
    """encoding [B, H], history [B, C] or None -> decoded baskets (see the module docstring)."""
    nsd, embed = model.nsd, model.item_embedding
    history, class_embeddings = _repeat_inputs(model, history)
    num_classes = nsd.num_classes
    batch = tf.shape(encoding)[0]

    def step_body(step, active, token, states, emitted, best, items, scores, quantities):
        logits, output, states = nsd.step(
            encoding, embed(token), states, history, class_embeddings
        )  # [B, C]
        logits = logits + _step_mask(num_classes, step) + emitted * _NEG
        probs = tf.nn.softmax(logits)  # [B, C]
        choice = tf.argmax(_choosable(probs, probs, end_threshold, 0.0), axis=-1,
                           output_type=tf.int32)
        token = tf.where(active, choice, 0)
        best = tf.where(active[:, None], tf.maximum(best, probs), best)
        active = active & (token > 0)
        score = tf.gather(probs, token, batch_dims=1)
        qty = tf.math.expm1(tf.nn.relu(nsd.quantity(output, embed(token))))
        return (
            step + 1, active, token, states,
            tf.maximum(emitted, tf.one_hot(token, num_classes)),
            best,
            _put(items, step, token, max_items),
            _put(scores, step, tf.where(active, score, 0.0), max_items),
            _put(quantities, step, tf.where(active, qty, 0.0), max_items),
        )

    _, _, _, _, _, best, items, scores, quantities = _until_all_ended(step_body, (
        tf.constant(0),
        tf.ones([batch], tf.bool),
        tf.zeros([batch], tf.int32),
        nsd.initial_states(encoding),
        tf.zeros([batch, num_classes]),  # 1 where already in the basket
        tf.zeros([batch, num_classes]),  # running max probability per class
        tf.zeros([batch, max_items], tf.int32),
        tf.zeros([batch, max_items]),
        tf.zeros([batch, max_items]),
    ), max_items)
    return _finish(items, scores, quantities, best, ranking_size)


def beam_search(
    model, encoding, max_items: int, ranking_size: int, beam_width: int, history=None,
    end_threshold: float = 0.0,
) -> dict:
    """encoding [B, H], history [B, C] or None -> the most likely basket (sum of
    log-probabilities, end-of-basket included) among ``beam_width`` beams; outputs as
    greedy_decode."""
    nsd, embed = model.nsd, model.item_embedding
    history, class_embeddings = _repeat_inputs(model, history)
    num_classes, width = nsd.num_classes, beam_width
    batch = tf.shape(encoding)[0]
    enc = tf.repeat(encoding, width, axis=0)  # [B*W, H]
    if history is not None:
        history = tf.repeat(history, width, axis=0)  # [B*W, C]
    stay = tf.one_hot(0, num_classes, on_value=0.0, off_value=_NEG)  # a finished beam stays

    def step_body(step, active, token, states, beam_score, emitted, best, items, scores,
                  quantities):
        logits, output, states = nsd.step(
            enc, embed(tf.reshape(token, [-1])), states, history, class_embeddings
        )
        logits = tf.reshape(logits, [batch, width, num_classes])
        logits = logits + _step_mask(num_classes, step) + emitted * _NEG
        log_probs = tf.nn.log_softmax(logits)  # [B, W, C]
        probs = tf.exp(log_probs)
        log_probs = _choosable(log_probs, probs, end_threshold, _NEG)
        log_probs = tf.where(active[:, :, None], log_probs, stay)
        total = tf.reshape(beam_score[:, :, None] + log_probs, [batch, width * num_classes])
        beam_score, index = tf.math.top_k(total, k=width)  # [B, W]
        parent, token = index // num_classes, index % num_classes
        regather = lambda x: tf.gather(x, parent, batch_dims=1)  # noqa: E731
        was_active = regather(active)
        probs, emitted, best = regather(probs), regather(emitted), regather(best)
        items, scores, quantities = regather(items), regather(scores), regather(quantities)
        rows = tf.reshape(tf.range(batch)[:, None] * width + parent, [-1])  # [B*W]
        states = [[tf.gather(h, rows), tf.gather(c, rows)] for h, c in states]
        output = tf.gather(output, rows)
        best = tf.where(was_active[:, :, None], tf.maximum(best, probs), best)
        active = was_active & (token > 0)
        token = tf.where(was_active, token, 0)
        score = tf.gather(probs, token, batch_dims=2)
        qty = tf.math.expm1(tf.nn.relu(nsd.quantity(output, embed(tf.reshape(token, [-1])))))
        qty = tf.reshape(qty, [batch, width])
        return (
            step + 1, active, token, states, beam_score,
            tf.maximum(emitted, tf.one_hot(token, num_classes)),
            best,
            _put(items, step, token, max_items),
            _put(scores, step, tf.where(active, score, 0.0), max_items),
            _put(quantities, step, tf.where(active, qty, 0.0), max_items),
        )

    _, _, _, _, beam_score, _, best, items, scores, quantities = _until_all_ended(step_body, (
        tf.constant(0),
        tf.ones([batch, width], tf.bool),
        tf.zeros([batch, width], tf.int32),
        nsd.initial_states(enc),
        # Only beam 0 is alive at first.
        tf.tile(tf.concat([[0.0], tf.fill([width - 1], _NEG)], 0)[None, :], [batch, 1]),
        tf.zeros([batch, width, num_classes]),
        tf.zeros([batch, width, num_classes]),
        tf.zeros([batch, width, max_items], tf.int32),
        tf.zeros([batch, width, max_items]),
        tf.zeros([batch, width, max_items]),
    ), max_items)
    choice = tf.argmax(beam_score, axis=1, output_type=tf.int32)  # [B]
    pick = lambda x: tf.gather(x, choice, batch_dims=1)  # noqa: E731
    return _finish(pick(items), pick(scores), pick(quantities), pick(best), ranking_size)


def _finish(items, scores, quantities, best, ranking_size: int) -> dict:
    """items, scores, quantities [B, D'], best [B, C] -> the outputs of the module docstring."""
    # Classes 0 (end-of-basket) and 1 (OOV) never rank.
    num_classes = tf.shape(best)[1]
    best = best + tf.concat([tf.fill([2], -1.0), tf.zeros([num_classes - 2])], 0)[None, :]
    ranking_scores, ranking = tf.math.top_k(best, k=ranking_size)
    return {
        "items": items,
        "scores": scores,
        "quantities": quantities,
        "sizes": tf.reduce_sum(tf.cast(items > 0, tf.int32), axis=1),
        "ranking": ranking,
        "ranking_scores": tf.maximum(ranking_scores, 0.0),
    }


def decode(
    model, encoding, max_items: int, ranking_size: int, beam_width: int = 1, history=None,
    end_threshold: float = 0.0,
) -> dict:
    """Greedy when ``beam_width`` is 1, else beam search. ``ranking_size`` is capped at the
    number of item classes; ``history`` is needed with the repeat path."""
    ranking_size = min(ranking_size, model.nsd.num_classes - 2)
    if beam_width <= 1:
        return greedy_decode(model, encoding, max_items, ranking_size, history, end_threshold)
    return beam_search(
        model, encoding, max_items, ranking_size, beam_width, history, end_threshold
    )


def decode_as_configured(model, config, encoding, history=None) -> dict:
    """``decode`` with the basket cap, ranking size, beam width and end threshold of ``config``
    (a LensConfig): what inference and the exported signatures run."""
    return decode(
        model, encoding, config.max_target_items, config.ranking_size, config.beam_width,
        history=history, end_threshold=config.end_threshold,
    )
