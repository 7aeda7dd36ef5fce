// NodeContext: typed, checked access to one ONNX node's inputs and attributes for the op mappers.
#include "engine/onnx/import_context.hpp"

#include <onnx/onnx_pb.h>

#include "engine/onnx/onnx_tensor.hpp"

namespace quarks::onnx_import {

NodeContext::NodeContext(const onnx::NodeProto& node, std::string quarks_name, int opset, BuildState& state,
                         std::filesystem::path base_dir)
    : node_(node), name_(std::move(quarks_name)), opset_(opset), state_(state), base_dir_(std::move(base_dir)) {}

const std::string& NodeContext::op_type() const { return node_.op_type(); }

std::string NodeContext::sub(const std::string& suffix) const { return state_.unique_name(name_ + "." + suffix); }

void NodeContext::fail(ErrorCode code, const std::string& message) const { throw Error(code, message); }

std::size_t NodeContext::input_count() const { return static_cast<std::size_t>(node_.input_size()); }

bool NodeContext::has_input(std::size_t i) const {
  return i < input_count() && !node_.input(static_cast<int>(i)).empty();
}

const ImportedValue& NodeContext::input(std::size_t i) const {
  if (!has_input(i)) invalid("input " + std::to_string(i) + " is required");
  const std::string& n = node_.input(static_cast<int>(i));
  auto it = state_.values->find(n);
  if (it == state_.values->end()) fail(ErrorCode::kInternal, "input '" + n + "' has no value");
  return it->second;
}

const Tensor& NodeContext::const_tensor(std::size_t i) const {
  const ImportedValue& v = input(i);
  const std::string& n = node_.input(static_cast<int>(i));
  if (!v.is_const)
    unsupported("input " + std::to_string(i) + " '" + n +
                "' must be a constant (an initializer or computed from constants)");
  if (v.has_symbols()) {
    unsupported("input " + std::to_string(i) + " '" + n +
                "' depends on a symbolic input dim; give concrete input shapes (OnnxImportOptions::input_shapes)");
  }
  return v.data;
}

std::vector<SymInt> NodeContext::sym_ints(std::size_t i) const {
  const ImportedValue& v = input(i);
  const std::string& n = node_.input(static_cast<int>(i));
  if (!v.is_const)
    unsupported("input " + std::to_string(i) + " '" + n +
                "' must be a constant (an initializer or computed from constants)");
  if (v.data.dtype() != DType::kI64) {
    invalid("input " + std::to_string(i) + " '" + n + "' must be int64, got " + to_string(v.data.dtype()));
  }
  if (v.has_symbols()) return v.sym;
  std::vector<SymInt> out;
  for (std::int64_t k = 0; k < v.data.numel(); ++k) out.push_back(SymInt::of(v.data.i64()[k]));
  return out;
}

std::vector<std::int64_t> NodeContext::const_ints(std::size_t i) const {
  const Tensor& t = const_tensor(i);
  if (t.dtype() != DType::kI64) {
    invalid("input " + std::to_string(i) + " '" + node_.input(static_cast<int>(i)) + "' must be int64, got " +
            to_string(t.dtype()));
  }
  return {t.i64(), t.i64() + t.numel()};
}

float NodeContext::const_scalar(std::size_t i) const {
  const Tensor& t = const_tensor(i);
  if (t.numel() != 1) {
    invalid("input " + std::to_string(i) + " '" + node_.input(static_cast<int>(i)) +
            "' must hold one value, has shape " + t.shape().to_string());
  }
  switch (t.dtype()) {
    case DType::kF32: return t.f32()[0];
    case DType::kI64: return static_cast<float>(t.i64()[0]);
    case DType::kBool: return t.boolean()[0];
    case DType::kBF16: break;
  }
  invalid("input " + std::to_string(i) + " has an unsupported dtype");
}

Value NodeContext::runtime(std::size_t i) {
  const ImportedValue& v = input(i);
  if (v.value) return *v.value;
  // A constant used by a runtime op: materialise it once in the builder.
  const std::string& n = node_.input(static_cast<int>(i));
  if (v.has_symbols()) {
    unsupported("input " + std::to_string(i) + " '" + n +
                "' depends on a symbolic input dim and is used as data; give concrete input shapes "
                "(OnnxImportOptions::input_shapes)");
  }
  ImportedValue& mut = state_.values->at(n);
  mut.value = b().constant(state_.value_name ? state_.value_name(n) : state_.unique_name(n), mut.data);
  return *mut.value;
}

SymShape NodeContext::shape(std::size_t i) const {
  const ImportedValue& v = input(i);
  if (v.is_const) return detail::to_sym(v.data.shape());
  SymShape out;
  for (const Dim& d : state_.builder->dims(*v.value)) out.push_back({d.value, d.symbol});
  return out;
}

DType NodeContext::dtype(std::size_t i) const {
  const ImportedValue& v = input(i);
  return v.is_const ? v.data.dtype() : state_.builder->dtype(*v.value);
}

const onnx::AttributeProto* NodeContext::attr(const std::string& name) const {
  for (const auto& a : node_.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

namespace {
const char* attr_type_name(int t) {
  switch (t) {
    case onnx::AttributeProto::FLOAT: return "float";
    case onnx::AttributeProto::INT: return "int";
    case onnx::AttributeProto::STRING: return "string";
    case onnx::AttributeProto::TENSOR: return "tensor";
    case onnx::AttributeProto::FLOATS: return "floats";
    case onnx::AttributeProto::INTS: return "ints";
    case onnx::AttributeProto::STRINGS: return "strings";
    case onnx::AttributeProto::GRAPH: return "graph";
    default: return "other";
  }
}
}  // namespace

#define QUARKS_ATTR_CHECK(a, T)                                                                        \
  if ((a)->type() != onnx::AttributeProto::T) {                                                        \
    invalid("attribute '" + name + "' must be " + attr_type_name(onnx::AttributeProto::T) + ", got " + \
            attr_type_name((a)->type()));                                                              \
  }

std::int64_t NodeContext::attr_int(const std::string& name, std::optional<std::int64_t> def) const {
  const auto* a = attr(name);
  if (!a) {
    if (!def) invalid("attribute '" + name + "' is required");
    return *def;
  }
  QUARKS_ATTR_CHECK(a, INT)
  return a->i();
}

float NodeContext::attr_float(const std::string& name, std::optional<float> def) const {
  const auto* a = attr(name);
  if (!a) {
    if (!def) invalid("attribute '" + name + "' is required");
    return *def;
  }
  QUARKS_ATTR_CHECK(a, FLOAT)
  return a->f();
}

std::string NodeContext::attr_string(const std::string& name, std::optional<std::string> def) const {
  const auto* a = attr(name);
  if (!a) {
    if (!def) invalid("attribute '" + name + "' is required");
    return *def;
  }
  QUARKS_ATTR_CHECK(a, STRING)
  return a->s();
}

std::vector<std::int64_t> NodeContext::attr_ints(const std::string& name) const {
  const auto* a = attr(name);
  if (!a) return {};
  QUARKS_ATTR_CHECK(a, INTS)
  return {a->ints().begin(), a->ints().end()};
}

std::vector<float> NodeContext::attr_floats(const std::string& name) const {
  const auto* a = attr(name);
  if (!a) return {};
  QUARKS_ATTR_CHECK(a, FLOATS)
  return {a->floats().begin(), a->floats().end()};
}

int NodeContext::to_axis(std::int64_t v, const std::string& what) const {
  if (v < -Shape::kMaxRank || v > Shape::kMaxRank) {
    invalid(what + " " + std::to_string(v) + " is out of range (tensors have at most " +
            std::to_string(Shape::kMaxRank) + " dims)");
  }
  return static_cast<int>(v);
}

Tensor NodeContext::attr_tensor(const std::string& name) const {
  const auto* a = attr(name);
  if (!a) invalid("attribute '" + name + "' is required");
  QUARKS_ATTR_CHECK(a, TENSOR)
  return tensor_from_proto(a->t(), "attribute '" + name + "'", base_dir_);
}

#undef QUARKS_ATTR_CHECK

std::size_t NodeContext::output_count() const { return static_cast<std::size_t>(node_.output_size()); }

bool NodeContext::wants_output(std::size_t i) const {
  return i < output_count() && !node_.output(static_cast<int>(i)).empty();
}

void NodeContext::set_output(std::size_t i, Value v) {
  if (!wants_output(i)) return;
  ImportedValue out;
  out.value = v;
  (*state_.values)[node_.output(static_cast<int>(i))] = std::move(out);
}

void NodeContext::set_const_output(std::size_t i, Tensor t, std::vector<SymInt> sym) {
  if (!wants_output(i)) return;
  ImportedValue out;
  out.is_const = true;
  out.data = std::move(t);
  bool any_symbol = false;
  for (const SymInt& d : sym) any_symbol = any_symbol || !d.known();
  if (any_symbol) out.sym = std::move(sym);
  (*state_.values)[node_.output(static_cast<int>(i))] = std::move(out);
}

}  // namespace quarks::onnx_import
