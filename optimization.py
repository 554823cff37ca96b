"""Weight updates for BERT: the learning-rate schedule, AdamW and the training op.

`create_optimizer` builds the training op the way BERT was pre-trained: linear warm-up,
linear decay, Adam with decoupled weight decay and gradients clipped to a global norm of 1.

Under a `tf.distribute` strategy (e.g. an Estimator with `RunConfig(train_distribute=...)`)
the gradients are summed across replicas once, clipped by the norm of that sum, and the
already-summed gradients are applied on every device. One device and N replicas with the
same global batch therefore take the same step, even while clipping is active.
"""

import re
from collections.abc import Callable, Sequence

import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops

# Weight-decay exclusions and Adam settings BERT was pre-trained with.
_BERT_WEIGHT_DECAY_RATE = 0.01
_BERT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
_BERT_CLIP_NORM = 1.0

_SUPPORTED_OPTIMIZERS = ("adamw",)

GradsAndVars = list[tuple[tf.Tensor | tf.IndexedSlices, tf.Variable]]


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
) -> tf.Operation:
    """Builds the op that takes one training step on `loss` and increments the global step.

    Must be called where the model is built: in an Estimator `model_fn` or, with a
    `tf.distribute` strategy, in the replica function. Under an Estimator with
    `train_distribute`, `compute_gradients` scales each replica's mean loss by
    1/num_replicas, so the summed gradient is that of the global batch's mean loss.

    Args:
      loss: float scalar `[]`, this replica's loss.
      init_lr: peak learning rate (see `learning_rate_schedule`).
      num_train_steps: total number of training steps.
      num_warmup_steps: number of linear warm-up steps.
      use_tpu: wrap the optimizer in `CrossShardOptimizer` for `TPUEstimator`.
      optimizer_name: which update rule to use; only "adamw" exists today.

    Returns:
      The training op.
    """
    if optimizer_name not in _SUPPORTED_OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer_name {optimizer_name!r}; supported: "
            f"{', '.join(_SUPPORTED_OPTIMIZERS)}."
        )
    global_step = tf.compat.v1.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(
        init_lr, global_step, num_train_steps, num_warmup_steps
    )
    optimizer = AdamWeightDecayOptimizer(
        learning_rate=learning_rate,
        weight_decay_rate=_BERT_WEIGHT_DECAY_RATE,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=list(_BERT_EXCLUDE_FROM_WEIGHT_DECAY),
    )
    trainable_variables = tf.compat.v1.trainable_variables()
    if use_tpu:
        return _create_tpu_train_op(optimizer, loss, trainable_variables, global_step)
    _replica_context_or_raise("create_optimizer")
    grads_and_vars = optimizer.compute_gradients(loss, var_list=trainable_variables)
    grads_and_vars = [(grad, var) for grad, var in grads_and_vars if grad is not None]
    if not grads_and_vars:
        raise ValueError(f"The loss {loss.name} has no gradient for any trainable variable.")
    grads_and_vars = sum_and_clip_gradients(grads_and_vars, _BERT_CLIP_NORM)
    return apply_summed_gradients(optimizer, grads_and_vars, global_step)


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
    replica_context = _replica_context_or_raise("sum_and_clip_gradients")
    grads = [grad for grad, _ in grads_and_vars]
    variables = [var for _, var in grads_and_vars]
    if replica_context.num_replicas_in_sync > 1:
        grads = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=clip_norm)
    return list(zip(grads, variables, strict=True))


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
) -> tf.Operation:
    """Applies gradients that are already summed over replicas, then bumps `global_step`.

    `Optimizer.apply_gradients` would sum the gradients across replicas a second time;
    here every device applies its own copy of the (identical) summed gradient instead.
    Works with any `tf.compat.v1.train.Optimizer` that uses the per-variable hooks.

    Args:
      optimizer: the update rule.
      grads_and_vars: `(gradient, variable)` pairs from `sum_and_clip_gradients`.
      global_step: incremented by exactly one after all variables are updated.

    Returns:
      The training op.
    """
    replica_context = _replica_context_or_raise("apply_summed_gradients")
    grads = [grad for grad, _ in grads_and_vars]
    variables = [var for _, var in grads_and_vars]

    # The merge function closes over `optimizer` instead of taking it as an argument: the
    # model_fn runs once per replica, and merge_call would wrap the replicas' distinct
    # optimizer objects into a PerReplica value. Replica 0's optimizer serves everyone.
    def apply_in_cross_replica_context(strategy, grads, variables, global_step):
        return _apply_on_every_device(strategy, optimizer, grads, variables, global_step)

    return replica_context.merge_call(
        apply_in_cross_replica_context, args=(grads, variables, global_step)
    )


def _apply_on_every_device(
    strategy: tf.distribute.Strategy,
    optimizer: tf.compat.v1.train.Optimizer,
    grads: Sequence,
    variables: Sequence[tf.Variable],
    global_step: tf.Variable | None,
) -> tf.Operation:
    """Cross-replica half of `apply_summed_gradients`: one update per variable copy."""
    # The underscored methods are the hooks every `tf.compat.v1.train.Optimizer` subclass
    # implements; this mirrors the base class's `_distributed_apply` minus its gradient
    # reduction. Slots are created outside any control flow and, under a strategy, are
    # mirrored like their variables.
    with tf.init_scope():
        optimizer._create_slots(variables)

    def update_one_copy(variable, grad):
        return _update_variable(optimizer, grad, variable)

    with tf.name_scope(optimizer.get_name()):
        optimizer._prepare()
        update_ops = []
        for grad, variable in zip(grads, variables, strict=True):
            # `update` runs `update_one_copy` once per device holding a copy of `variable`,
            # handing it that device's component of the PerReplica `grad`.
            update_ops.extend(
                strategy.extended.update(variable, update_one_copy, args=(grad,), group=False)
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
            increment = strategy.extended.update(
                global_step, _increment_by_one, group=True
            )
        return strategy.group(increment)


def _increment_by_one(variable: tf.Variable) -> tf.Operation:
    return variable.assign_add(tf.constant(1, dtype=variable.dtype), read_value=False)


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


class AdamWeightDecayOptimizer(tf.compat.v1.train.Optimizer):
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
        root_scope = tf.compat.v1.VariableScope(reuse=False)
        with tf.compat.v1.variable_scope(root_scope, auxiliary_name_scope=False):
            for variable in var_list:
                self._zeros_slot(variable, "m", "adam_m")
                self._zeros_slot(variable, "v", "adam_v")

    def _prepare(self) -> None:
        learning_rate = self._call_if_callable(self.learning_rate)
        self._learning_rate_tensor = tf.convert_to_tensor(learning_rate, name="learning_rate")

    def _apply_dense(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        return self._apply_adam_update(grad, var)

    def _resource_apply_dense(self, grad: tf.Tensor, handle: tf.Variable) -> tf.Operation:
        # Since TF 2.x the base class passes the resource variable itself as `handle`.
        return self._apply_adam_update(grad, handle)

    def _apply_sparse(self, grad: tf.IndexedSlices, var: tf.Variable) -> tf.Operation:
        dense_grad = _scatter_rows(grad.values, grad.indices, tf.shape(var))
        return self._apply_adam_update(dense_grad, var)

    def _resource_apply_sparse(
        self, grad: tf.Tensor, handle: tf.Variable, indices: tf.Tensor
    ) -> tf.Operation:
        dense_grad = _scatter_rows(grad, indices, tf.shape(handle))
        return self._apply_adam_update(dense_grad, handle)

    def _apply_adam_update(self, grad: tf.Tensor, var: tf.Variable) -> tf.Operation:
        """One AdamW step on `var` (any shape) with a dense `grad` of the same shape."""
        dtype = var.dtype.base_dtype
        m = self.get_slot(var, "m")
        v = self.get_slot(var, "v")
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        # Decoupled from m and v: adding the decay to the loss instead would let Adam's
        # normalisation rescale it per coordinate.
        if self._do_use_weight_decay(_variable_name(var.name)):
            update += self.weight_decay_rate * var
        learning_rate = tf.cast(self._learning_rate_tensor, dtype)
        return tf.group(
            var.assign_sub(learning_rate * update, read_value=False),
            m.assign(next_m, read_value=False),
            v.assign(next_v, read_value=False),
        )

    def _do_use_weight_decay(self, param_name: str) -> bool:
        """Whether `param_name` (no `:0` suffix) gets weight decay."""
        if not self.weight_decay_rate:
            return False
        for pattern in self.exclude_from_weight_decay or ():
            if re.search(pattern, param_name) is not None:
                return False
        return True


def _scatter_rows(values: tf.Tensor, indices: tf.Tensor, dense_shape: tf.Tensor) -> tf.Tensor:
    """Dense `[dense_shape]` tensor holding the sum of `values` rows at their `indices`.

    Args:
      values: `[num_indices, ...]` gradient rows.
      indices: `[num_indices]` integer row ids, duplicates allowed.
      dense_shape: shape of the variable, `[num_rows, ...]`.
    """
    return tf.math.unsorted_segment_sum(values, indices, dense_shape[0])
