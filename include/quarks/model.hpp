// quarks — compiling a Graph into a Model, and running it with Sessions.
//
// Thread safety:
//   - Model is immutable after compile() and may be shared by any number of threads. Copies share it.
//   - Session is per caller: one thread at a time may call run() on a given Session. Create one
//     Session per thread (cheap: it owns the activation arena and a thread arena, not the weights).
//   - Sessions of one Model may run concurrently; their results are bit-identical to serial runs.
//   - Profiling (Session::set_profiling, step_seconds, plan_steps) is Session state like run(): call
//     these from the thread that runs the Session, not while another thread is inside run().
//
// Memory: a Session's arena is sized when it first sees a set of input shapes. Later runs with the
// same input shapes and caller-provided output buffers make no heap allocation inside quarks.
//
// State (KV caches, GraphBuilder::kv_cache): each Session owns its models' caches — 2·B·Hkv·max_len·D
// floats per cache, allocated at the first run after construction or reset_state() (the batch size B
// of that run is then fixed until reset_state()) and reused by every later run, whatever its input
// shapes (a prompt and single-token steps use different plans but the same cache memory). A run
// appends only its new rows. Sessions never share state: one Session is one conversation (or one
// batch of conversations decoded in lockstep), so concurrent Sessions of one Model decode
// independently. Token-by-token generation:
//
//   quarks::Session s(model);                        // per conversation
//   auto out = s.run({{"x", prompt}});               // prefill: [B, S_prompt, d], positions 0..S_prompt-1
//   for (...) {
//     out = s.run({{"x", next_token}});              // [B, 1, d] at position s.cache_length()
//   }
//   s.reset_state();                                 // new conversation (keeps the memory)
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

/// Precision of the dense products. Everything else (activations, gating, norms, softmax,
/// accumulation) is f32 in both modes.
enum class Precision {
  kF32,   ///< f32 weights and products — the reference.
  kBF16,  ///< bf16 weights, bf16 products with f32 accumulation (needs AVX512_BF16 for speed).
};

struct CompileOptions {
  int threads = 0;  ///< size of each Session's thread arena; 0 = all hardware threads
  Precision precision = Precision::kF32;
  /// Cap on one Session's activation arena, and on each output that Session::run(inputs) allocates;
  /// 0 = no cap.
  std::size_t max_arena_bytes = 0;
  /// Cap on one Session's state (the KV caches: batch × heads × max_len × head_dim, keys and values),
  /// checked when a plan is made for a batch size, before anything is allocated; 0 = no cap.
  std::size_t max_state_bytes = 0;
  /// Plans (one per set of input shapes met, e.g. per prompt length) a Model keeps for its Sessions,
  /// >= 1. A Session looks a plan up when its input shapes change; past the limit the plan looked up
  /// least recently is dropped (Sessions running it keep it until their next shape change) and is
  /// rebuilt if its shapes come back. Plans share the packed weights.
  std::size_t max_plans = 16;
};

namespace detail {
struct ModelImpl;
struct SessionImpl;
}  // namespace detail

/// A compiled, immutable model. Obtain with quarks::compile().
class Model {
 public:
  Model() = default;
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  const CompileOptions& options() const;
  /// The graph after optimisation (fusion, dead-node elimination), one node per line.
  std::string describe() const;
  /// Number of nodes after optimisation, and how many of them are fused ops.
  std::size_t node_count() const;

  /// Internal; not part of the stable API.
  explicit Model(std::shared_ptr<const detail::ModelImpl> impl) : impl_(std::move(impl)) {}
  const detail::ModelImpl& impl() const;
  const std::shared_ptr<const detail::ModelImpl>& shared_impl() const;

 private:
  std::shared_ptr<const detail::ModelImpl> impl_;
};

/// Validates, optimises and compiles `graph`. Throws quarks::Error naming the node, op and reason.
/// When every input dim is fixed, weights are prepacked and kernels created here; with symbolic dims
/// that happens on the first run for each new set of input shapes (shared by all Sessions).
Model compile(const Graph& graph, const CompileOptions& options = {});

/// A named input for Session::run.
struct NamedInput {
  std::string_view name;
  ConstTensorView tensor;
};
/// A named, caller-owned output buffer for Session::run.
struct NamedOutput {
  std::string_view name;
  TensorView tensor;
};

/// One node of a plan step, for profiling tools.
struct PlanNodeInfo {
  std::string op;    ///< op name, e.g. "dense", "gated_dense", "attention"
  std::string name;  ///< node name after fusion (a fused node carries the name fusion gave it)
  /// Floating-point operations of one run, 2 per multiply-add, products only: dense and synaptic_gate
  /// 2·M·K·N, gated_dense twice that, matmul 2·(output elements)·K, attention 2·Sk·(elements of q +
  /// elements of the output), i.e. Q·Kᵀ and P·V in full, also when causal (Sk: the keys the run
  /// sees, for a KV cache its length after the append; with a window, at most the window). 0 for
  /// every other op.
  double flops = 0;
  /// Bytes the node reads and writes, each tensor counted once whatever the kernel re-reads:
  /// constants as the op stores them (dense weights in bf16 count 2 bytes each under
  /// Precision::kBF16), a KV cache's keys and values only in the rows read (its length after the
  /// run's append) and written (the appended rows), other tensors whole at their dtype's size; 0 for
  /// a reshape that is a view of its input (it moves nothing).
  double bytes = 0;
};

/// One step of a Session's plan: nodes that run concurrently (usually one; each node is itself parallel
/// over the Session's threads). Steps run in order, one after the other.
struct PlanStep {
  std::vector<PlanNodeInfo> nodes;
  double flops = 0;  ///< sum over nodes
  double bytes = 0;  ///< sum over nodes
};

/// Per-caller execution state of a Model. Not thread-safe; see the thread-safety note above.
class Session {
 public:
  explicit Session(const Model& model);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  /// Runs the model writing into caller-provided buffers. Every graph input must be given once;
  /// `outputs` may name any subset of the graph outputs (the others are computed and dropped).
  /// Output buffers must have the exact output shape (see output_shape) and not overlap inputs.
  void run(std::span<const NamedInput> inputs, std::span<const NamedOutput> outputs);
  /// Convenience form: returns every graph output in a freshly allocated Tensor.
  std::map<std::string, Tensor> run(std::span<const NamedInput> inputs);
  std::map<std::string, Tensor> run(std::initializer_list<NamedInput> inputs) {
    return run(std::span<const NamedInput>(inputs.begin(), inputs.size()));
  }

  /// Shape that output `name` will have for these inputs (plans for them if needed).
  Shape output_shape(std::span<const NamedInput> inputs, std::string_view name);
  /// Bytes of this Session's activation arena for the current input shapes (0 before the first run).
  std::size_t arena_bytes() const noexcept;

  // --- profiling -----------------------------------------------------------------------------------------
  /// When enabled, every run records the wall time of each plan step (see plan_steps) into a buffer the
  /// Session owns: sized at the first profiled run of a plan, so later runs allocate nothing. Disabled
  /// (the default) costs one branch per step and records nothing.
  void set_profiling(bool enabled) noexcept;
  bool profiling() const noexcept;
  /// Seconds each step of the last run took, in plan_steps() order; empty if the last run was not
  /// profiled (or before the first run). Valid until the next run.
  std::span<const double> step_seconds() const noexcept;
  /// The steps of the plan of the last run (or of the plan output_shape() last chose), in execution
  /// order, with the flops and bytes of the next run of that plan from the Session's current state (a
  /// KV cache counts the rows the run will read and append); empty before the first. Builds strings:
  /// call it outside timed loops.
  std::vector<PlanStep> plan_steps() const;

  // --- state (KV caches) -------------------------------------------------------------------------------
  /// Starts a new conversation: every cache becomes empty (length 0) and the batch size is free again.
  /// The cache memory is kept for reuse. Cheap; nothing is cleared but the lengths.
  void reset_state() noexcept;
  /// Rows held by the model's caches (the position of the next token). The caches advance together;
  /// throws Error(kNotFound) if the model has no cache and Error(kInvalidArgument) if they differ (a
  /// graph that appends different token counts to different caches: use the named form).
  std::int64_t cache_length() const;
  /// Rows held by the cache declared as `name`; throws Error(kNotFound) for an unknown name.
  std::int64_t cache_length(std::string_view name) const;
  /// Bytes of state memory this Session holds for the KV caches (0 before the first run of a model with
  /// caches; reset_state() keeps it for the next conversation).
  std::size_t state_bytes() const noexcept;

 private:
  std::unique_ptr<detail::SessionImpl> impl_;
};

}  // namespace quarks
