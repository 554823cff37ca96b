"""Weight updates for BERT: the learning-rate schedule, AdamW, LAMB and the training op.

`create_optimizer` builds the training op the way BERT was pre-trained: linear warm-up,
linear decay, Adam with decoupled weight decay (or LAMB) and gradients clipped to a global
norm of 1.

Under a `tf.distribute` strategy (e.g. an Estimator with `RunConfig(train_distribute=...)`)
the gradients are summed across replicas once, clipped by the norm of that sum, and the
already-summed gradients are applied on every device. One device and N replicas with the
same global batch therefore take the same step, even while clipping is active.

Two options make a run of the training op not always an optimizer step:

* Gradient accumulation (`gradient_accumulation_steps=K`): every run is one micro-batch.
  Its gradient, summed over replicas, is added to `<variable>/gradient_accumulator`; every
  K-th run applies the accumulated sum divided by K (clipped as above), empties the
  accumulators and increments the global step. The global step therefore counts optimizer
  steps, and `max_steps=N` means N * K micro-batches. The replicas' gradients are summed on
  every micro-step, because a collective inside a conditional is not safe under a strategy;
  the accumulators then hold the same summed value on every device (mirrored), so a
  checkpoint restores the cycle on any number of replicas.
* Dynamic loss scaling (`loss_scaling=True`, for float16 compute): the loss is multiplied
  by the variable `loss_scale` before differentiation and the gradients divided by it. A
  step whose summed gradients are not all finite changes nothing but the scale, which is
  halved; after `loss_scale_growth_interval` finite runs in a row the scale doubles. It is
  logged to TensorBoard as "loss_scale", next to "learning_rate".

Both are decided after the cross-replica sum, so every replica takes the same decision. The
conditional update runs inside the per-variable update functions (`tf.cond` there, plain
masking everywhere else): no collective is ever inside a branch.
"""

import contextlib
import numbers
import re
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops

# Weight-decay exclusions and Adam settings BERT was pre-trained with.
_BERT_WEIGHT_DECAY_RATE = 0.01
_BERT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
_BERT_CLIP_NORM = 1.0

_SUPPORTED_OPTIMIZERS = ("adamw", "lamb")

GradsAndVars = list[tuple[tf.Tensor | tf.IndexedSlices, tf.Variable]]
# A variable and the value it is assigned on every run of the training op.
Assignments = list[tuple[tf.Variable, tf.Tensor]]


def learning_rate_schedule(
    init_lr: float,
    global_step: tf.Tensor | tf.Variable,
    num_train_steps: int,
    num_warmup_steps: int,
) -> tf.Tensor:
    """Learning rate at `global_step`: linear warm-up, then linear decay to zero.

    While `global_step < num_warmup_steps` the rate is `init_lr * global_step /
    num_warmup_steps`. Afterwards it is `init_lr * (1 - min(global_step, num_train_steps) /
    num_train_steps)`: the decay is measured from step 0, not from the end of warm-up, so
    the rate drops when warm-up ends. This matches the original BERT schedule.

    Args:
      init_lr: peak learning rate.
      global_step: integer scalar `[]`, the step the update is computed for.
      num_train_steps: step at which the rate reaches zero; must be positive.
      num_warmup_steps: length of the warm-up; 0 disables warm-up.

    Returns:
      float32 scalar `[]`.
    """
    if num_train_steps is None or num_train_steps <= 0:
        raise ValueError(
            f"num_train_steps must be a positive number of steps, got {num_train_steps!r}."
        )
    if num_warmup_steps is None or num_warmup_steps < 0:
        raise ValueError(
            f"num_warmup_steps must be zero or a positive number of steps, got "
            f"{num_warmup_steps!r}."
        )
    step = tf.cast(global_step, tf.float32)
    decay_steps = float(num_train_steps)
    decayed_fraction = tf.minimum(step, decay_steps) / decay_steps
    learning_rate = init_lr * (1.0 - decayed_fraction)
    if num_warmup_steps:
        warmup_learning_rate = init_lr * (step / float(num_warmup_steps))
        learning_rate = tf.where(
            step < float(num_warmup_steps), warmup_learning_rate, learning_rate
        )
    return tf.identity(learning_rate, name="learning_rate")


def create_optimizer(
    loss: tf.Tensor,
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    optimizer_name: str = "adamw",
    gradient_accumulation_steps: int = 1,
    loss_scaling: bool = False,
    initial_loss_scale: float = 2.0**15,
    loss_scale_growth_interval: int = 2000,
) -> tf.Operation:
    """Builds the op that takes one training step on `loss` and increments the global step.

    Must be called where the model is built: in an Estimator `model_fn` or, with a
    `tf.distribute` strategy, in the replica function. Under an Estimator with
    `train_distribute`, `compute_gradients` scales each replica's mean loss by
    1/num_replicas, so the summed gradient is that of the global batch's mean loss.

    Args:
      loss: float scalar `[]`, this replica's loss (of one micro-batch when accumulating).
      init_lr: peak learning rate (see `learning_rate_schedule`).
      num_train_steps: total number of optimizer steps.
      num_warmup_steps: number of linear warm-up steps.
      use_tpu: wrap the optimizer in `CrossShardOptimizer` for `TPUEstimator`.
      optimizer_name: the update rule, "adamw" (BERT's) or "lamb".
      gradient_accumulation_steps: micro-batches per optimizer step; 1 turns accumulation
        off. Not available with `use_tpu`.
      loss_scaling: dynamic loss scaling for float16 compute. Not available with `use_tpu`.
      initial_loss_scale: the scale of the first step, at least 1.
      loss_scale_growth_interval: finite runs in a row (micro-batches, when accumulating)
        after which the scale doubles.

    Returns:
      The training op.
    """
    _check_training_options(
        optimizer_name,
        use_tpu,
        gradient_accumulation_steps,
        loss_scaling,
        initial_loss_scale,
        loss_scale_growth_interval,
    )
    global_step = tf.compat.v1.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(
        init_lr, global_step, num_train_steps, num_warmup_steps
    )
    optimizer = _make_optimizer(optimizer_name, learning_rate, global_step)
    trainable_variables = tf.compat.v1.trainable_variables()
    if use_tpu:
        return _create_tpu_train_op(optimizer, loss, trainable_variables, global_step)
    _replica_context_or_raise("create_optimizer")
    _scalar_summary("learning_rate", learning_rate)
    if gradient_accumulation_steps == 1 and not loss_scaling:
        grads_and_vars = _compute_gradients(optimizer, loss, trainable_variables)
        grads_and_vars = sum_and_clip_gradients(grads_and_vars, _BERT_CLIP_NORM)
        return apply_summed_gradients(optimizer, grads_and_vars, global_step)
    loss_scale = None
    if loss_scaling:
        loss_scale = _DynamicLossScale(initial_loss_scale, loss_scale_growth_interval)
        _scalar_summary("loss_scale", loss_scale.scale)
    return _create_skippable_train_op(
        optimizer,
        loss,
        trainable_variables,
        global_step,
        gradient_accumulation_steps,
        loss_scale,
    )


def _check_training_options(
    optimizer_name: str,
    use_tpu: bool,
    gradient_accumulation_steps: int,
    loss_scaling: bool,
    initial_loss_scale: float,
    loss_scale_growth_interval: int,
) -> None:
    """Raises a ValueError naming the first `create_optimizer` argument that cannot work."""
    if optimizer_name not in _SUPPORTED_OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer_name {optimizer_name!r}; supported: "
            f"{', '.join(_SUPPORTED_OPTIMIZERS)}."
        )
    if not _is_positive_integer(gradient_accumulation_steps):
        raise ValueError(
            f"gradient_accumulation_steps must be an integer >= 1, got "
            f"{gradient_accumulation_steps!r}."
        )
    if use_tpu and gradient_accumulation_steps > 1:
        raise ValueError(
            "gradient_accumulation_steps > 1 is only implemented without use_tpu; on a TPU "
            "use a larger train_batch_size instead."
        )
    if not loss_scaling:
        return
    if use_tpu:
        raise ValueError("loss_scaling is for float16 on GPUs; TPUs compute in bfloat16.")
    if not initial_loss_scale >= 1.0:
        raise ValueError(f"initial_loss_scale must be >= 1, got {initial_loss_scale!r}.")
    if not _is_positive_integer(loss_scale_growth_interval):
        raise ValueError(
            f"loss_scale_growth_interval must be an integer >= 1, got "
            f"{loss_scale_growth_interval!r}."
        )


def _is_positive_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _scalar_summary(tag: str, value: tf.Tensor) -> None:
    """Logs scalar `[]` `value` to TensorBoard as `tag`, under the current name scope.

    `tf.compat.v1.summary.scalar` would make the tag unique among op names, and
    "learning_rate" and "loss_scale" are op names already: it would log "learning_rate_1".
    """
    scope = tf.compat.v1.get_default_graph().get_name_scope()
    summary = tf.raw_ops.ScalarSummary(
        tags=f"{scope}/{tag}" if scope else tag, values=value, name=tag + "_summary"
    )
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SUMMARIES, summary)


def _make_optimizer(
    optimizer_name: str, learning_rate: tf.Tensor, global_step: tf.Variable
) -> tf.compat.v1.train.Optimizer:
    """BERT's AdamW, or LAMB with the same weight decay, exclusions and Adam constants."""
    settings = dict(
        learning_rate=learning_rate,
        weight_decay_rate=_BERT_WEIGHT_DECAY_RATE,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=list(_BERT_EXCLUDE_FROM_WEIGHT_DECAY),
    )
    if optimizer_name == "lamb":
        return LAMBOptimizer(global_step=global_step, **settings)
    return AdamWeightDecayOptimizer(**settings)


def _create_tpu_train_op(
    optimizer: tf.compat.v1.train.Optimizer,
    loss: tf.Tensor,
    trainable_variables: Sequence[tf.Variable],
    global_step: tf.Variable,
) -> tf.Operation:
    """The original TPU path: clip each shard's gradient, then sum across shards."""
    cross_shard_optimizer = tf.compat.v1.tpu.CrossShardOptimizer(optimizer)
    grads = tf.gradients(loss, trainable_variables)
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=_BERT_CLIP_NORM)
    return cross_shard_optimizer.apply_gradients(
        zip(grads, trainable_variables, strict=True), global_step=global_step
    )


def _compute_gradients(
    optimizer: tf.compat.v1.train.Optimizer,
    loss: tf.Tensor,
    trainable_variables: Sequence[tf.Variable],
) -> GradsAndVars:
    """This replica's `(gradient, variable)` pairs, leaving out variables without one."""
    grads_and_vars = optimizer.compute_gradients(loss, var_list=trainable_variables)
    grads_and_vars = [(grad, var) for grad, var in grads_and_vars if grad is not None]
    if not grads_and_vars:
        raise ValueError(f"The loss {loss.name} has no gradient for any trainable variable.")
    return grads_and_vars


def _create_skippable_train_op(
    optimizer: tf.compat.v1.train.Optimizer,
    loss: tf.Tensor,
    trainable_variables: Sequence[tf.Variable],
    global_step: tf.Variable,
    accumulation_steps: int,
    loss_scale: "_DynamicLossScale | None",
) -> tf.Operation:
    """The training op when a run may add to the accumulators or skip an overflow.

    Every run sums this micro-batch's gradient over the replicas; what happens next is
    decided from that sum, hence the same on every replica. The optimizer update, and the
    global step increment, take place only on runs where `apply_if` is true.
    """
    if loss_scale is not None:
        loss = tf.cast(loss, tf.float32) * loss_scale.scale
    grads_and_vars = _compute_gradients(optimizer, loss, trainable_variables)
    grads = [grad for grad, _ in grads_and_vars]
    variables = [var for _, var in grads_and_vars]
    if loss_scale is not None:
        # Unscaled before the sum, which is then less likely to overflow in float32.
        grads = [_divide_gradient(grad, loss_scale.scale) for grad in grads]
    grads = _sum_over_replicas(grads)
    grads_are_finite = _all_finite(grads) if loss_scale is not None else tf.constant(True)
    assignments = loss_scale.next_state(grads_are_finite) if loss_scale is not None else []
    apply_if = grads_are_finite
    if accumulation_steps > 1:
        accumulator = _GradientAccumulator(variables, accumulation_steps)
        grads, is_last_micro_step, accumulator_assignments = accumulator.add(
            grads, grads_are_finite
        )
        apply_if = tf.logical_and(grads_are_finite, is_last_micro_step)
        assignments += accumulator_assignments
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=_BERT_CLIP_NORM)
    return apply_summed_gradients(
        optimizer,
        list(zip(grads, variables, strict=True)),
        global_step,
        apply_if=apply_if,
        assignments=assignments,
    )


def sum_and_clip_gradients(grads_and_vars: GradsAndVars, clip_norm: float) -> GradsAndVars:
    """Sums gradients over all replicas, then clips the sum to a global norm of `clip_norm`.

    Clipping the sum, not each replica's share, is what makes N replicas take the same
    step as one device. Without a strategy (or with one replica) nothing is communicated.
    As in the original, an `IndexedSlices` gradient (from `tf.gather`) counts towards the
    norm row by row as gathered, i.e. rows of repeated ids are not merged first.

    Args:
      grads_and_vars: this replica's `(gradient, variable)` pairs, no `None` gradients.
      clip_norm: the largest global norm the summed gradients may have.

    Returns:
      `(summed_clipped_gradient, variable)` pairs, identical on every replica.
    """
    grads = _sum_over_replicas([grad for grad, _ in grads_and_vars])
    variables = [var for _, var in grads_and_vars]
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=clip_norm)
    return list(zip(grads, variables, strict=True))


def _sum_over_replicas(grads: list) -> list:
    """The sum of each gradient over all replicas; no communication with one replica."""
    replica_context = _replica_context_or_raise("sum_and_clip_gradients")
    if replica_context.num_replicas_in_sync > 1:
        return replica_context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    return grads


def _replica_context_or_raise(caller: str) -> tf.distribute.ReplicaContext:
    """The current replica context; outside a strategy that is the default one."""
    replica_context = tf.distribute.get_replica_context()
    if replica_context is None:
        raise RuntimeError(
            f"{caller} must be called in a replica context: an "
            "Estimator model_fn or the function given to strategy.extended."
            "call_for_each_replica, not directly under strategy.scope()."
        )
    return replica_context


def apply_summed_gradients(
    optimizer: tf.compat.v1.train.Optimizer,
    grads_and_vars: GradsAndVars,
    global_step: tf.Variable | None = None,
    apply_if: tf.Tensor | None = None,
    assignments: Assignments = (),
) -> tf.Operation:
    """Applies gradients that are already summed over replicas, then bumps `global_step`.

    `Optimizer.apply_gradients` would sum the gradients across replicas a second time;
    here every device applies its own copy of the (identical) summed gradient instead.
    Works with any `tf.compat.v1.train.Optimizer` that uses the per-variable hooks.

    Args:
      optimizer: the update rule.
      grads_and_vars: `(gradient, variable)` pairs from `sum_and_clip_gradients`.
      global_step: incremented by exactly one after all variables are updated.
      apply_if: optional bool scalar `[]`, equal on all replicas: when false, neither the
        variables, their slots nor `global_step` change.
      assignments: `(variable, value)` pairs assigned whatever `apply_if` says, for state
        such as accumulators; each value is computed in this replica context.

    Returns:
      The training op.
    """
    replica_context = _replica_context_or_raise("apply_summed_gradients")
    grads = [grad for grad, _ in grads_and_vars]
    variables = [var for _, var in grads_and_vars]
    assigned_variables = [variable for variable, _ in assignments]
    assigned_values = [value for _, value in assignments]

    # The merge function closes over `optimizer` instead of taking it as an argument: the
    # model_fn runs once per replica, and merge_call would wrap the replicas' distinct
    # optimizer objects into a PerReplica value. Replica 0's optimizer serves everyone.
    def apply_in_cross_replica_context(
        strategy, grads, variables, global_step, apply_if, assigned_variables, assigned_values
    ):
        update_ops = _apply_on_every_device(
            strategy, optimizer, grads, variables, global_step, apply_if
        )
        assign_ops = [
            strategy.extended.update(variable, _assign, args=(value,), group=True)
            for variable, value in zip(assigned_variables, assigned_values, strict=True)
        ]
        return tf.group(update_ops, *assign_ops)

    return replica_context.merge_call(
        apply_in_cross_replica_context,
        args=(grads, variables, global_step, apply_if, assigned_variables, assigned_values),
    )


def _apply_on_every_device(
    strategy: tf.distribute.Strategy,
    optimizer: tf.compat.v1.train.Optimizer,
    grads: Sequence,
    variables: Sequence[tf.Variable],
    global_step: tf.Variable | None,
    apply_if: tf.Tensor | None,
) -> tf.Operation:
    """Cross-replica half of `apply_summed_gradients`: one update per variable copy."""
    # The underscored methods are the hooks every `tf.compat.v1.train.Optimizer` subclass
    # implements; this mirrors the base class's `_distributed_apply` minus its gradient
    # reduction. Slots are created outside any control flow and, under a strategy, are
    # mirrored like their variables.
    with tf.init_scope():
        optimizer._create_slots(variables)

    def update_one_copy(variable, grad, apply_if):
        if apply_if is None:
            return _update_variable(optimizer, grad, variable)
        # Branching here, per device and after the cross-replica sum, needs no merge_call.
        return tf.cond(
            apply_if, lambda: _update_variable(optimizer, grad, variable), tf.no_op
        )

    with tf.name_scope(optimizer.get_name()):
        optimizer._prepare()
        update_ops = []
        for grad, variable in zip(grads, variables, strict=True):
            # `update` runs `update_one_copy` once per device holding a copy of `variable`,
            # handing it that device's component of the PerReplica `grad`.
            update_ops.extend(
                strategy.extended.update(
                    variable, update_one_copy, args=(grad, apply_if), group=False
                )
            )

        def finish(update_ops):
            return optimizer._finish(update_ops, "update")

        non_slot_devices = strategy.extended.non_slot_devices(variables)
        finish_ops = strategy.extended.update_non_slot(
            non_slot_devices, finish, args=(update_ops,), group=False
        )
        if global_step is None:
            return strategy.group(finish_ops)
        # Incrementing after the updates makes every update read the pre-increment step,
        # so the learning rate used for step k is the one the schedule gives for k.
        with tf.control_dependencies(tf.nest.flatten(finish_ops)):
            if apply_if is None:
                increment = strategy.extended.update(
                    global_step, _increment_by_one, group=True
                )
            else:
                increment = strategy.extended.update(
                    global_step, _increment_if, args=(apply_if,), group=True
                )
        return strategy.group(increment)


def _increment_by_one(variable: tf.Variable) -> tf.Operation:
    return variable.assign_add(tf.constant(1, dtype=variable.dtype), read_value=False)


def _increment_if(variable: tf.Variable, condition: tf.Tensor) -> tf.Operation:
    return variable.assign_add(tf.cast(condition, variable.dtype), read_value=False)


def _assign(variable: tf.Variable, value: tf.Tensor) -> tf.Operation:
    return variable.assign(value, read_value=False)


def _update_variable(
    optimizer: tf.compat.v1.train.Optimizer,
    grad: tf.Tensor | tf.IndexedSlices,
    variable: tf.Variable,
) -> tf.Operation:
    """Routes one gradient to the optimizer hook matching the variable and gradient kind."""
    name = _variable_name(variable.name)
    with tf.name_scope("update_" + name), tf.device(variable.device):
        is_resource = resource_variable_ops.is_resource_variable(variable)
        if isinstance(grad, tf.IndexedSlices):
            if is_resource:
                return optimizer._resource_apply_sparse_duplicate_indices(
                    grad.values, variable, grad.indices
                )
            return optimizer._apply_sparse_duplicate_indices(grad, variable)
        if is_resource:
            return optimizer._resource_apply_dense(grad, variable)
        return optimizer._apply_dense(grad, variable)


def _variable_name(tensor_name: str) -> str:
    """`bert/pooler/dense/bias` from `bert/pooler/dense/bias:0` or `.../bias/replica_1:0`.

    Mirrored copies on other devices carry a `/replica_N` suffix; dropping it keeps the
    weight-decay decision the same on every device.
    """
    name = re.sub(r":\d+$", "", tensor_name)
    return re.sub(r"/replica_\d+$", "", name)


@contextlib.contextmanager
def _root_variable_scope(reuse: bool | object) -> Iterator[None]:
    """Opens the root variable scope, so the caller's scope does not prefix new names."""
    root_scope = tf.compat.v1.VariableScope(reuse=reuse)
    with tf.compat.v1.variable_scope(root_scope, auxiliary_name_scope=False):
        yield


def _state_variable(
    name: str, shape: Sequence[int] | tf.TensorShape, dtype: tf.DType, initial_value: float = 0
) -> tf.Variable:
    """A non-trainable, checkpointed variable of the training op's own state.

    Under a strategy the model_fn runs once per replica; reusing the variable by name gives
    every replica the same (mirrored) variable.
    """
    with _root_variable_scope(reuse=tf.compat.v1.AUTO_REUSE):
        return tf.compat.v1.get_variable(
            name,
            shape=shape,
            dtype=dtype,
            initializer=tf.constant_initializer(initial_value),
            trainable=False,
        )


class _DynamicLossScale:
    """The loss scale of float16 training and its count of finite steps in a row.

    Both are checkpointed variables: `loss_scale` (float32) and `loss_scale_finite_steps`.
    After a step with a non-finite gradient the scale halves, but not below 1; after
    `growth_interval` finite steps in a row it doubles. A power of two scales exactly.
    """

    def __init__(self, initial_scale: float, growth_interval: int) -> None:
        self.growth_interval = growth_interval
        self._scale_variable = _state_variable("loss_scale", [], tf.float32, initial_scale)
        self._finite_steps_variable = _state_variable("loss_scale_finite_steps", [], tf.int64)
        # Read once: the same value scales the loss, unscales the gradients and is updated.
        self.scale = self._scale_variable.read_value()

    def next_state(self, grads_are_finite: tf.Tensor) -> Assignments:
        """The scale and count after a step whose gradients are finite or not.

        Args:
          grads_are_finite: bool scalar `[]`, equal on all replicas.

        Returns:
          `(variable, new_value)` pairs for both variables.
        """
        finite_steps = self._finite_steps_variable.read_value() + 1
        grow = tf.logical_and(grads_are_finite, finite_steps >= self.growth_interval)
        next_scale = tf.where(
            grads_are_finite,
            tf.where(grow, self.scale * 2.0, self.scale),
            tf.maximum(self.scale / 2.0, 1.0),
        )
        keep_counting = tf.logical_and(grads_are_finite, tf.logical_not(grow))
        next_finite_steps = tf.where(keep_counting, finite_steps, tf.zeros_like(finite_steps))
        return [
            (self._scale_variable, next_scale),
            (self._finite_steps_variable, next_finite_steps),
        ]


class _GradientAccumulator:
    """Adds up the (replica-summed) gradients of `num_micro_steps` micro-batches.

    The sums live in `<variable>/gradient_accumulator`, the number of micro-batches already
    in the current cycle in `gradient_accumulation_step`; both are checkpointed, so a run
    restarted from a checkpoint continues mid-cycle. A sparse gradient is added as dense
    rows, so on an accumulated step the clipping norm merges the rows of repeated ids.
    """

    def __init__(self, variables: Sequence[tf.Variable], num_micro_steps: int) -> None:
        self.num_micro_steps = num_micro_steps
        self._sums = [
            _state_variable(
                _variable_name(variable.name) + "/gradient_accumulator",
                variable.shape,
                variable.dtype.base_dtype,
            )
            for variable in variables
        ]
        self._micro_step = _state_variable("gradient_accumulation_step", [], tf.int64)

    def add(
        self, grads: Sequence, grads_are_finite: tf.Tensor
    ) -> tuple[list[tf.Tensor], tf.Tensor, Assignments]:
        """Adds one micro-batch's gradients unless they are not finite.

        Args:
          grads: summed gradients, one per variable, dense or `IndexedSlices`.
          grads_are_finite: bool scalar `[]`; when false the micro-batch is skipped.

        Returns:
          The accumulated gradients divided by `num_micro_steps`, each shaped like its
          variable; a bool scalar `[]`, whether this micro-batch ends the cycle; and the
          `(variable, new_value)` pairs of the accumulator state (emptied at the end).
        """
        micro_step = self._micro_step.read_value()
        is_last_micro_step = micro_step >= self.num_micro_steps - 1
        next_micro_step = tf.math.floormod(
            micro_step + tf.cast(grads_are_finite, tf.int64), self.num_micro_steps
        )
        assignments = [(self._micro_step, next_micro_step)]
        averages = []
        for sum_variable, grad in zip(self._sums, grads, strict=True):
            previous = sum_variable.read_value()
            total = previous + _densify(grad, previous)
            averages.append(total / float(self.num_micro_steps))
            next_sum = tf.where(
                grads_are_finite,
                tf.where(is_last_micro_step, tf.zeros_like(total), total),
                previous,
            )
            assignments.append((sum_variable, next_sum))
        return averages, is_last_micro_step, assignments


def _divide_gradient(
    grad: tf.Tensor | tf.IndexedSlices, divisor: tf.Tensor
) -> tf.Tensor | tf.IndexedSlices:
    """`grad / divisor`, keeping an `IndexedSlices` sparse."""
    if isinstance(grad, tf.IndexedSlices):
        values = grad.values / tf.cast(divisor, grad.values.dtype)
        return tf.IndexedSlices(values, grad.indices, grad.dense_shape)
    return grad / tf.cast(divisor, grad.dtype)


def _all_finite(grads: Sequence) -> tf.Tensor:
    """Bool scalar `[]`: no gradient holds an inf or a NaN."""
    values = [grad.values if isinstance(grad, tf.IndexedSlices) else grad for grad in grads]
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in values]))


def _densify(grad: tf.Tensor | tf.IndexedSlices, like: tf.Tensor) -> tf.Tensor:
    """`grad` as a dense tensor shaped like `like`; repeated rows of an `IndexedSlices` add."""
    if isinstance(grad, tf.IndexedSlices):
        return _scatter_rows(grad.values, grad.indices, tf.shape(like))
    return grad


def _matches_any(param_name: str, patterns: Sequence[str] | None) -> bool:
    """Whether `re.search` finds one of `patterns` in `param_name`."""
    return any(re.search(pattern, param_name) is not None for pattern in patterns or ())


class _DecoupledWeightDecayOptimizer(tf.compat.v1.train.Optimizer):
    """What AdamW and LAMB share: Adam's moments, decoupled weight decay, dense updates.

    Subclasses name their slots `<variable>/<_slot_prefix>_m` and `..._v` and implement
    `_apply_dense_update`. Sparse gradients (`tf.IndexedSlices`, e.g. from `tf.gather` on
    an embedding table) are scattered into a dense gradient first, so every row's m and v
    decay and every row gets weight decay on every step, exactly as in the original.
    """

    _slot_prefix = ""

    def __init__(
        self,
        learning_rate: float | tf.Tensor | Callable[[], tf.Tensor],
        weight_decay_rate: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
        exclude_from_weight_decay: Sequence[str] | None,
        name: str,
    ) -> None:
        super().__init__(use_locking=False, name=name)
        self.learning_rate = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = exclude_from_weight_decay
        self._learning_rate_tensor = None

    def _create_slots(self, var_list: Sequence[tf.Variable]) -> None:
        # Slot names are built from the variable's full name; opening them from the root
        # scope keeps them `<variable>/adam_m` even when the optimizer is created inside a
        # variable scope (which would otherwise prefix the scope a second time).
        with _root_variable_scope(reuse=False):
            for variable in var_list:
                self._zeros_slot(variable, "m", self._slot_prefix + "_m")
                self._zeros_slot(variable, "v", self._slot_prefix + "_v")

    def _prepare(self) -> None:
        learning_rate = self._call_if_callable(self.learning_rate)
        self._learning_rate_tensor = tf.convert_to_tensor(learning_rate, name="learning_rate")

    def _apply_dense(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        return self._apply_dense_update(grad, var)

    def _resource_apply_dense(self, grad: tf.Tensor, handle: tf.Variable) -> tf.Operation:
        # Since TF 2.x the base class passes the resource variable itself as `handle`.
        return self._apply_dense_update(grad, handle)

    # The base class first merges repeated indices with tf.unique. The dense scatter below
    # adds repeated rows anyway, and under XLA the unique op's data-dependent shape made
    # the compiled update recompile on almost every step (bench/README.md), so skip it.
    def _apply_sparse_duplicate_indices(self, grad, var):
        return self._apply_sparse(grad, var)

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices, **kwargs):
        return self._resource_apply_sparse(grad, handle, indices)

    def _apply_sparse(self, grad: tf.IndexedSlices, var: tf.Variable) -> tf.Operation:
        dense_grad = _scatter_rows(grad.values, grad.indices, tf.shape(var))
        return self._apply_dense_update(dense_grad, var)

    def _resource_apply_sparse(
        self, grad: tf.Tensor, handle: tf.Variable, indices: tf.Tensor
    ) -> tf.Operation:
        dense_grad = _scatter_rows(grad, indices, tf.shape(handle))
        return self._apply_dense_update(dense_grad, handle)

    def _apply_dense_update(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        raise NotImplementedError

    def _next_moments(
        self, grad: tf.Tensor, var: tf.Variable
    ) -> tuple[tf.Variable, tf.Variable, tf.Tensor, tf.Tensor]:
        """The slots m and v of `var` and their values after this step, all shaped like it."""
        m = self.get_slot(var, "m")
        v = self.get_slot(var, "v")
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
        return m, v, next_m, next_v

    def _do_use_weight_decay(self, param_name: str) -> bool:
        """Whether `param_name` (no `:0` suffix) gets weight decay."""
        if not self.weight_decay_rate:
            return False
        return not _matches_any(param_name, self.exclude_from_weight_decay)

    def _with_weight_decay(self, update: tf.Tensor, var: tf.Variable) -> tf.Tensor:
        # Decoupled from m and v: adding the decay to the loss instead would let Adam's
        # normalisation rescale it per coordinate.
        if self._do_use_weight_decay(_variable_name(var.name)):
            return update + self.weight_decay_rate * var
        return update


class AdamWeightDecayOptimizer(_DecoupledWeightDecayOptimizer):
    """Adam with decoupled weight decay and no bias correction, as BERT was trained.

    For every variable `p` with gradient `g`:
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g^2
        update = m / (sqrt(v) + epsilon) + weight_decay_rate * p
        p = p - learning_rate * update
    The weight-decay term is left out for variables whose name matches (`re.search`) one of
    `exclude_from_weight_decay`. The slots are named `<variable>/adam_m` and
    `<variable>/adam_v`, the names in Google's released checkpoints.

    Sparse gradients (`tf.IndexedSlices`, e.g. from `tf.gather` on an embedding table) are
    scattered into a dense gradient first, so every row's m and v decay and every row gets
    weight decay on every step, exactly as in the original implementation.
    """

    _slot_prefix = "adam"

    def __init__(
        self,
        learning_rate: float | tf.Tensor | Callable[[], tf.Tensor],
        weight_decay_rate: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] | None = None,
        name: str = "AdamWeightDecayOptimizer",
    ) -> None:
        super().__init__(
            learning_rate,
            weight_decay_rate,
            beta_1,
            beta_2,
            epsilon,
            exclude_from_weight_decay,
            name,
        )

    def _apply_dense_update(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        """One AdamW step on `var` (any shape) with a dense `grad` of the same shape."""
        m, v, next_m, next_v = self._next_moments(grad, var)
        update = self._with_weight_decay(next_m / (tf.sqrt(next_v) + self.epsilon), var)
        learning_rate = tf.cast(self._learning_rate_tensor, var.dtype.base_dtype)
        return tf.group(
            var.assign_sub(learning_rate * update, read_value=False),
            m.assign(next_m, read_value=False),
            v.assign(next_v, read_value=False),
        )


class LAMBOptimizer(_DecoupledWeightDecayOptimizer):
    """LAMB (You et al., 2019, as in NVIDIA's BERT): Adam with a per-layer trust ratio.

    For every variable `p` with gradient `g`, at optimizer step `t = global_step + 1`:
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g^2
        update = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
                 + weight_decay_rate * p
        ratio = ||p|| / ||update|| if both norms are > 0, else 1
        p = p - learning_rate * ratio * update
    The norms are over the whole variable. The weight-decay term is left out for variables
    matching `exclude_from_weight_decay`, the trust ratio (ratio = 1) for those matching
    `exclude_from_layer_adaptation`, which defaults to `exclude_from_weight_decay`. The
    slots are named `<variable>/lamb_m` and `<variable>/lamb_v`.

    `global_step` is read for the bias correction; by default the graph's global step.
    """

    _slot_prefix = "lamb"

    def __init__(
        self,
        learning_rate: float | tf.Tensor | Callable[[], tf.Tensor],
        weight_decay_rate: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] | None = None,
        exclude_from_layer_adaptation: Sequence[str] | None = None,
        global_step: tf.Variable | tf.Tensor | None = None,
        name: str = "LAMBOptimizer",
    ) -> None:
        super().__init__(
            learning_rate,
            weight_decay_rate,
            beta_1,
            beta_2,
            epsilon,
            exclude_from_weight_decay,
            name,
        )
        if exclude_from_layer_adaptation is None:
            exclude_from_layer_adaptation = exclude_from_weight_decay
        self.exclude_from_layer_adaptation = exclude_from_layer_adaptation
        self.global_step = global_step
        self._bias_corrections = None

    def _prepare(self) -> None:
        super()._prepare()
        global_step = self.global_step
        if global_step is None:
            global_step = tf.compat.v1.train.get_global_step()
        if global_step is None:
            raise ValueError(
                "LAMBOptimizer needs the global step for its bias correction: pass "
                "global_step= or create one with tf.compat.v1.train.get_or_create_global_step()."
            )
        # Scalars, once per step, in float64: in float32 `1 - 0.999**t` is off by 1e-5.
        step = tf.cast(global_step, tf.float64) + 1.0
        self._bias_corrections = (
            1.0 - tf.pow(tf.constant(self.beta_1, tf.float64), step),
            1.0 - tf.pow(tf.constant(self.beta_2, tf.float64), step),
        )

    def _apply_dense_update(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        """One LAMB step on `var` (any shape) with a dense `grad` of the same shape."""
        dtype = var.dtype.base_dtype
        m, v, next_m, next_v = self._next_moments(grad, var)
        m_correction, v_correction = (tf.cast(c, dtype) for c in self._bias_corrections)
        m_hat = next_m / m_correction
        v_hat = next_v / v_correction
        update = self._with_weight_decay(m_hat / (tf.sqrt(v_hat) + self.epsilon), var)
        if not _matches_any(_variable_name(var.name), self.exclude_from_layer_adaptation):
            update *= _trust_ratio(var, update)
        learning_rate = tf.cast(self._learning_rate_tensor, dtype)
        return tf.group(
            var.assign_sub(learning_rate * update, read_value=False),
            m.assign(next_m, read_value=False),
            v.assign(next_v, read_value=False),
        )


def _trust_ratio(weights: tf.Tensor | tf.Variable, update: tf.Tensor) -> tf.Tensor:
    """Scalar `[]`: `||weights|| / ||update||`, or 1 when either norm is zero."""
    weights_norm = tf.norm(weights)
    update_norm = tf.norm(update)
    both_positive = tf.logical_and(weights_norm > 0.0, update_norm > 0.0)
    return tf.where(
        both_positive, tf.math.divide_no_nan(weights_norm, update_norm), tf.ones_like(weights_norm)
    )


def _scatter_rows(values: tf.Tensor, indices: tf.Tensor, dense_shape: tf.Tensor) -> tf.Tensor:
    """Dense `[dense_shape]` tensor holding the sum of `values` rows at their `indices`.

    Args:
      values: `[num_indices, ...]` gradient rows.
      indices: `[num_indices]` integer row ids, duplicates allowed.
      dense_shape: shape of the variable, `[num_rows, ...]`.
    """
    return tf.math.unsorted_segment_sum(values, indices, dense_shape[0])
