// What the ONNX importer knows about each value while it walks the graph, and the interface an op
// mapper uses to read a node's inputs and attributes and to define its outputs.
//
// A value is either *runtime* (a quarks::Value in the GraphBuilder being filled) or *constant*
// (a Tensor known at import time: an initializer, a Constant node, or anything folded from
// constants). Integer constants may hold symbolic elements — the output of Shape on an input with a
// symbolic dim — so the Shape -> Gather -> Concat -> Reshape chains PyTorch exports can be folded
// without knowing batch or sequence sizes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ops/contract/graph_ir.hpp"
#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace onnx {
class NodeProto;
class AttributeProto;
class TensorProto;
}  // namespace onnx

namespace quarks::onnx_import {

using detail::SymDim;
using detail::SymShape;

/// The largest tensor import creates while folding (ConstantOfShape, Range, constants computed by
/// running quarks ops): a hostile model must not make import allocate without bound.
constexpr std::size_t kMaxFoldedBytes = std::size_t{1} << 30;
/// The most elements a tensor of the imported graph may have (graph inputs, Expand outputs; as for
/// initializers in onnx_tensor.cc), far from int64 overflow in any later shape computation.
constexpr std::int64_t kMaxTensorElements = std::int64_t{1} << 40;

/// One element of a folded integer constant: a known value (any sign), or a value known only at run
/// time — named when it is a symbolic input dim ("seq"), anonymous otherwise (e.g. seq / 4).
struct SymInt {
  std::int64_t value = 0;
  std::string symbol;
  bool is_known = true;

  bool known() const noexcept { return is_known; }
  static SymInt of(std::int64_t v) { return {v, {}, true}; }
  static SymInt unknown(std::string symbol = {}) { return {0, std::move(symbol), false}; }
  static SymInt from_dim(const SymDim& d) { return d.known() ? of(d.value) : unknown(d.symbol); }
  /// True when this is the same (possibly symbolic) size as dim `d`.
  bool same_as(const SymDim& d) const {
    return known() ? d.known() && d.value == value : !d.known() && !symbol.empty() && d.symbol == symbol;
  }
  friend bool operator==(const SymInt&, const SymInt&) = default;
};

struct ImportedValue {
  bool is_const = false;
  Tensor data;                 ///< constants: the data (f32, i64 or bool)
  std::vector<SymInt> sym;     ///< i64 constants with symbolic elements: one entry per element, else empty
  std::optional<Value> value;  ///< runtime values; for constants, once materialised in the builder

  bool has_symbols() const { return !sym.empty(); }
};

/// Builder plus the naming and constant materialisation shared by all mappers of one import.
struct BuildState {
  GraphBuilder* builder = nullptr;
  std::map<std::string, ImportedValue>* values = nullptr;
  std::function<std::string(const std::string&)> unique_name;  ///< a node/value name not used yet
  /// The builder name for an ONNX value materialised as a constant: its own name the first time.
  std::function<std::string(const std::string&)> value_name;
};

class NodeContext {
 public:
  NodeContext(const onnx::NodeProto& node, std::string quarks_name, int opset, BuildState& state,
              std::filesystem::path base_dir);

  const onnx::NodeProto& node() const { return node_; }
  const std::string& op_type() const;
  int opset() const { return opset_; }
  /// The quarks node name for this ONNX node; sub(k) names extra nodes a mapping needs.
  const std::string& name() const { return name_; }
  std::string sub(const std::string& suffix) const;
  GraphBuilder& b() { return *state_.builder; }

  // --- inputs -------------------------------------------------------------------------------------
  std::size_t input_count() const;  ///< including omitted optional inputs ("" names) in the middle
  bool has_input(std::size_t i) const;
  /// Throws "input i is required" when absent.
  const ImportedValue& input(std::size_t i) const;
  bool is_const(std::size_t i) const { return has_input(i) && input(i).is_const; }
  const Tensor& const_tensor(std::size_t i) const;            ///< throws unless constant without symbols
  std::vector<std::int64_t> const_ints(std::size_t i) const;  ///< an i64 constant's values
  std::vector<SymInt> sym_ints(std::size_t i) const;          ///< i64 constant, symbols allowed
  float const_scalar(std::size_t i) const;                    ///< a one-element f32/i64 constant
  Value runtime(std::size_t i);                               ///< as a builder Value (constants are materialised once)
  SymShape shape(std::size_t i) const;
  DType dtype(std::size_t i) const;
  int rank(std::size_t i) const { return static_cast<int>(shape(i).size()); }

  // --- attributes -----------------------------------------------------------------------------------
  const onnx::AttributeProto* attr(const std::string& name) const;
  bool has_attr(const std::string& name) const { return attr(name) != nullptr; }
  std::int64_t attr_int(const std::string& name, std::optional<std::int64_t> def = std::nullopt) const;
  float attr_float(const std::string& name, std::optional<float> def = std::nullopt) const;
  std::string attr_string(const std::string& name, std::optional<std::string> def = std::nullopt) const;
  std::vector<std::int64_t> attr_ints(const std::string& name) const;  ///< empty if absent
  std::vector<float> attr_floats(const std::string& name) const;       ///< empty if absent
  /// An axis (attribute or input value) as int; throws unless |v| <= Shape::kMaxRank, so a huge
  /// value cannot wrap into a valid axis. The quarks op checks it against the real rank.
  int to_axis(std::int64_t v, const std::string& what = "axis") const;
  Tensor attr_tensor(const std::string& name) const;

  // --- outputs ---------------------------------------------------------------------------------------
  std::size_t output_count() const;
  bool wants_output(std::size_t i) const;  ///< the node names output i (it may be omitted)
  void set_output(std::size_t i, Value v);
  void set_const_output(std::size_t i, Tensor t, std::vector<SymInt> sym = {});

  [[noreturn]] void fail(ErrorCode code, const std::string& message) const;
  [[noreturn]] void unsupported(const std::string& message) const { fail(ErrorCode::kUnsupported, message); }
  [[noreturn]] void invalid(const std::string& message) const { fail(ErrorCode::kInvalidArgument, message); }

 private:
  const onnx::NodeProto& node_;
  std::string name_;
  int opset_;
  BuildState& state_;
  std::filesystem::path base_dir_;
};

/// A mapper turns one ONNX node into quarks ops (or constants).
using OpMapper = void (*)(NodeContext& ctx);

/// Evaluates a node whose inputs are all constant on the host (shape arithmetic on small integer
/// tensors, possibly symbolic); returns false when it cannot, and the importer then folds the node
/// by compiling and running its quarks mapping.
using HostFold = bool (*)(NodeContext& ctx);

struct OpEntry {
  const char* domain;  ///< "" for the default domain, "ai.quarks"
  const char* op_type;
  OpMapper map;
  HostFold fold = nullptr;
};

/// The supported ops (engine/onnx/op_table.cc).
const std::vector<OpEntry>& op_table();
const OpEntry* find_op(const std::string& domain, const std::string& op_type);

}  // namespace quarks::onnx_import
